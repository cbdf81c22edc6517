-- Credentials, refresh tokens and signing keys. No profile data lives here.

CREATE TABLE user_auth (
    user_id       uuid PRIMARY KEY,
    username      text        NOT NULL,
    password_hash text        NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
-- Usernames are unique regardless of case; logins look them up the same way.
CREATE UNIQUE INDEX user_auth_username_key ON user_auth (lower(username));

-- A refresh token is its row: valid while the row exists, is unexpired and
-- unspent. Rotation spends the old row and adds one to the same family; a
-- spent token presented again deletes the whole family.
CREATE TABLE refresh_tokens (
    token_id   uuid PRIMARY KEY,
    user_id    uuid        NOT NULL,
    family_id  uuid        NOT NULL,
    expires_at timestamptz NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    spent_at   timestamptz
);
CREATE INDEX refresh_tokens_by_user   ON refresh_tokens (user_id);
CREATE INDEX refresh_tokens_by_family ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_by_expiry ON refresh_tokens (expires_at);

-- Development signing keys (Ed25519, PKCS#8), shared by every auth replica.
-- The newest signs; older ones keep verifying until their tokens expire.
CREATE TABLE signing_keys (
    kid         text PRIMARY KEY,
    private_key bytea       NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
