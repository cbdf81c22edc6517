//! Demo data: varied, realistic products for `shop seed --products N` and the
//! benchmarks. Generated from a fixed seed, so every run makes the same catalogue.

use chrono::{Duration, SubsecRound, Utc};
use sea_orm::{DatabaseConnection, DbErr};
use serde_json::json;
use uuid::Uuid;

use crate::entity::product::Model;
use crate::store;

struct Category {
    name: &'static str,
    nouns: &'static [&'static str],
    tags: &'static [&'static str],
    /// Price range in cents.
    price: (i64, i64),
}

const CATEGORIES: &[Category] = &[
    Category {
        name: "electronics",
        nouns: &[
            "Headphones",
            "Smartphone",
            "Laptop",
            "Tablet",
            "Smartwatch",
            "Speaker",
            "Camera",
            "Monitor",
            "Keyboard",
            "Mouse",
            "Charger",
            "Earbuds",
        ],
        tags: &[
            "wireless",
            "bluetooth",
            "4k",
            "portable",
            "usb-c",
            "noise-cancelling",
            "rechargeable",
            "smart",
        ],
        price: (1_999, 249_999),
    },
    Category {
        name: "shoes",
        nouns: &[
            "Running Shoe",
            "Trail Runner",
            "Sneaker",
            "Hiking Boot",
            "Sandal",
            "Loafer",
            "Slipper",
            "Football Boot",
        ],
        tags: &[
            "running",
            "leather",
            "waterproof",
            "lightweight",
            "vegan",
            "breathable",
            "trail",
        ],
        price: (2_999, 24_999),
    },
    Category {
        name: "books",
        nouns: &[
            "Cookbook",
            "Novel",
            "Field Guide",
            "Atlas",
            "Biography",
            "Poetry Collection",
            "Travel Guide",
            "Workbook",
        ],
        tags: &[
            "paperback",
            "hardcover",
            "bestseller",
            "illustrated",
            "classic",
            "new-release",
        ],
        price: (799, 5_999),
    },
    Category {
        name: "kitchen",
        nouns: &[
            "Chef Knife",
            "Frying Pan",
            "Espresso Machine",
            "Blender",
            "Kettle",
            "Cutting Board",
            "Dutch Oven",
            "Toaster",
        ],
        tags: &[
            "stainless",
            "non-stick",
            "cast-iron",
            "dishwasher-safe",
            "electric",
            "bamboo",
        ],
        price: (1_499, 59_999),
    },
    Category {
        name: "toys",
        nouns: &[
            "Building Set",
            "Puzzle",
            "Board Game",
            "Plush Bear",
            "Remote Car",
            "Doll House",
            "Train Set",
            "Kite",
        ],
        tags: &[
            "educational",
            "wooden",
            "outdoor",
            "family",
            "ages-3+",
            "ages-8+",
        ],
        price: (999, 14_999),
    },
    Category {
        name: "garden",
        nouns: &[
            "Garden Hose",
            "Pruning Shears",
            "Planter",
            "Lawn Mower",
            "Bird Feeder",
            "Seed Kit",
            "Wheelbarrow",
            "Sprinkler",
        ],
        tags: &["outdoor", "organic", "durable", "cordless", "weatherproof"],
        price: (999, 39_999),
    },
    Category {
        name: "sports",
        nouns: &[
            "Yoga Mat",
            "Dumbbell Set",
            "Tennis Racket",
            "Bicycle Helmet",
            "Football",
            "Water Bottle",
            "Resistance Band",
            "Jump Rope",
        ],
        tags: &[
            "fitness",
            "training",
            "outdoor",
            "lightweight",
            "adjustable",
        ],
        price: (799, 29_999),
    },
    Category {
        name: "beauty",
        nouns: &[
            "Face Cream",
            "Shampoo",
            "Lipstick",
            "Perfume",
            "Hair Dryer",
            "Serum",
            "Sunscreen",
            "Nail Polish",
        ],
        tags: &[
            "vegan",
            "organic",
            "fragrance-free",
            "spf",
            "sensitive-skin",
        ],
        price: (499, 12_999),
    },
    Category {
        name: "clothing",
        nouns: &[
            "Rain Jacket",
            "T-Shirt",
            "Hoodie",
            "Jeans",
            "Wool Sweater",
            "Scarf",
            "Summer Dress",
            "Chinos",
        ],
        tags: &[
            "cotton",
            "wool",
            "waterproof",
            "slim-fit",
            "recycled",
            "unisex",
        ],
        price: (1_499, 19_999),
    },
    Category {
        name: "office",
        nouns: &[
            "Desk Lamp",
            "Notebook",
            "Fountain Pen",
            "Office Chair",
            "Standing Desk",
            "Backpack",
            "Stapler",
            "Whiteboard",
        ],
        tags: &["ergonomic", "adjustable", "refillable", "led", "recycled"],
        price: (399, 49_999),
    },
];

const BRANDS: &[&str] = &[
    "Apex", "Nimbus", "Voltra", "Lumina", "Orion", "Kestrel", "Tundra", "Solace", "Vireo",
    "Marlow", "Quill", "Ember",
];
const ADJECTIVES: &[&str] = &[
    "Classic",
    "Pro",
    "Ultra",
    "Compact",
    "Deluxe",
    "Essential",
    "Eco",
    "Premium",
    "Sport",
    "Urban",
    "Studio",
    "Travel",
];
const COLOURS: &[&str] = &[
    "black", "white", "red", "blue", "green", "grey", "navy", "olive", "sand", "pink",
];
const MATERIALS: &[&str] = &[
    "aluminium",
    "cotton",
    "oak",
    "steel",
    "recycled plastic",
    "leather",
    "bamboo",
    "glass",
];

/// SplitMix64: small, fast, good enough for demo data, no dependency.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }

    fn range(&mut self, low: i64, high: i64) -> i64 {
        low + (self.next() % (high - low + 1) as u64) as i64
    }
}

/// Product number `n` of the demo catalogue made by run `run`.
fn product(random: &mut Random, run: &str, n: usize) -> Model {
    let category = &CATEGORIES[random.below(CATEGORIES.len())];
    let brand = random.pick(BRANDS);
    let adjective = random.pick(ADJECTIVES);
    let noun = random.pick(category.nouns);
    let colour = random.pick(COLOURS);
    let material = random.pick(MATERIALS);
    let model_no = random.range(100, 999);
    let mut tags: Vec<String> = Vec::new();
    for _ in 0..random.range(1, 4) {
        let tag = random.pick(category.tags).to_owned();
        if !tags.contains(&tag) {
            tags.push(tag);
        }
    }
    tags.push(colour.to_owned());
    // Prices end in 99 like real ones.
    let price_cents = random.range(category.price.0, category.price.1) / 100 * 100 + 99;
    let stock = if random.below(10) == 0 {
        0
    } else {
        random.range(1, 500) as i32
    };
    let created_at =
        Utc::now().trunc_subsecs(6) - Duration::minutes(random.range(0, 60 * 24 * 365));
    // Most products of a real catalogue have no reviews; the others a few to many.
    let rating_count = if random.below(5) < 3 {
        0
    } else {
        random.range(1, 200) as i32
    };
    let rating_sum = random.range(i64::from(rating_count), 5 * i64::from(rating_count));
    Model {
        product_id: Uuid::now_v7(),
        sku: format!("{}-{run}-{n:07}", &category.name[..3].to_uppercase()),
        name: format!("{brand} {adjective} {noun} {model_no}"),
        description: format!(
            "The {brand} {adjective} {noun} in {colour}, made of {material}. \
             A {} choice for everyday use, backed by a two-year warranty.",
            random.pick(&[
                "reliable",
                "stylish",
                "popular",
                "hard-wearing",
                "thoughtful"
            ])
        ),
        price_cents,
        currency: "EUR".into(),
        stock,
        category: category.name.into(),
        tags,
        attributes: json!({ "brand": brand, "colour": colour, "material": material }),
        version: 1,
        rating_count,
        rating_sum,
        created_at,
        updated_at: created_at,
        deleted_at: None,
    }
}

/// Rows per INSERT (16 parameters each, well under Postgres's 65535).
const BATCH: usize = 2_000;

/// Inserts `count` demo products, calling `progress` with the running total.
pub async fn seed(
    db: &DatabaseConnection,
    count: usize,
    progress: impl Fn(usize),
) -> Result<(), DbErr> {
    let run = &Uuid::now_v7().simple().to_string()[24..];
    let mut random = Random(0x005E_ED0F_5409);
    let mut done = 0;
    while done < count {
        let size = BATCH.min(count - done);
        let batch: Vec<Model> = (done..done + size)
            .map(|n| product(&mut random, run, n))
            .collect();
        store::insert_seed(db, batch).await?;
        done += size;
        progress(done);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_products_are_valid_and_varied() {
        let mut random = Random(1);
        let products: Vec<Model> = (0..500).map(|n| product(&mut random, "t", n)).collect();
        let categories: std::collections::HashSet<&str> =
            products.iter().map(|p| p.category.as_str()).collect();
        assert!(categories.len() >= 8, "many categories");
        assert!(products.iter().any(|p| p.stock == 0), "some sold out");
        for p in &products {
            assert!(crate::domain::Sku::parse(&p.sku).is_ok(), "{}", p.sku);
            assert!(p.price_cents > 0 && p.price_cents % 100 == 99);
            assert!(crate::domain::parse_tags(&p.tags).is_ok());
        }
    }
}
