//! Search requests as shoppers send them: the same few hundred search texts
//! again and again, each time with other filters, so that no two requests
//! are the same question; and, for the worst case, texts never seen before.

/// Search texts of the demo catalogue (`shop seed`): broad single words,
/// product kinds, brands, and pairs of them.
const TEXTS: &[&str] = &[
    "wireless",
    "bluetooth",
    "headphones",
    "smartphone",
    "laptop",
    "speaker",
    "camera",
    "running shoe",
    "trail runner",
    "sneaker",
    "hiking boot",
    "leather",
    "waterproof",
    "cookbook",
    "novel",
    "travel guide",
    "chef knife",
    "espresso machine",
    "kettle",
    "cast-iron",
    "puzzle",
    "building set",
    "hoodie",
    "wool sweater",
    "jeans",
    "desk lamp",
    "office chair",
    "backpack",
    "nimbus",
    "apex pro",
    "voltra earbuds",
    "lumina monitor",
    "black",
    "navy",
    "cotton",
    "bamboo",
    "recycled",
    "premium",
    "compact speaker",
    "ultra laptop",
];
const CATEGORIES: &[&str] = &[
    "electronics",
    "shoes",
    "books",
    "kitchen",
    "toys",
    "clothing",
    "office",
];

/// `count` distinct search paths over [`TEXTS`], each with a category or a
/// stock filter and a price bound that differs from request to request.
pub fn mixed(count: usize) -> Vec<String> {
    (0..count)
        .map(|n| {
            let text = TEXTS[n % TEXTS.len()].replace(' ', "%20");
            let filter = match (n / TEXTS.len()) % 3 {
                0 => format!("category={}", CATEGORIES[n % CATEGORIES.len()]),
                1 => "in_stock=true".to_owned(),
                _ => "sort=price".to_owned(),
            };
            format!(
                "/products?q={text}&{filter}&max_price={}&limit=20",
                5_000 + n
            )
        })
        .collect()
}

/// `count` searches for one broad word that no cache can answer: each text is
/// new (it also excludes a word no product has), so every request ranks all
/// of the word's matches in Postgres.
pub fn never_seen(word: &str, count: usize) -> Vec<String> {
    (0..count)
        .map(|n| format!("/products?q={word}%20-zz{n}&category=electronics&in_stock=true&limit=20"))
        .collect()
}
