-- OAuth 2.0 clients (client credentials grant). The secret is stored only as an argon2id hash (PHC string);
-- a revoked client keeps its row (listed, never authenticated again).
CREATE TABLE clients (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    client_id text NOT NULL UNIQUE CHECK (client_id ~ '^[A-Za-z0-9_-]{1,64}$'),
    name text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    secret_hash text NOT NULL CHECK (secret_hash LIKE '$argon2id$%'),
    scopes text[] NOT NULL CHECK (cardinality(scopes) > 0),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz
);
