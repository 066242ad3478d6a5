-- auth-service tables, applied into every tenant schema (unqualified: the runner sets the
-- search path). Seed 004 section 2, plus refresh token families and the user audit trail.

CREATE TABLE users (
    id             SERIAL PRIMARY KEY,
    email          VARCHAR(254) NOT NULL,                 -- stored lowercased
    password_hash  VARCHAR(255) NOT NULL,                 -- bcrypt over SHA-256 of the password
    first_name     VARCHAR(100) NOT NULL,
    last_name      VARCHAR(100) NOT NULL,
    role           VARCHAR(20)  NOT NULL CHECK (role IN ('admin', 'manager', 'sales_rep', 'viewer')),
    status         VARCHAR(20)  NOT NULL DEFAULT 'pending' CHECK (status IN ('active', 'inactive', 'pending')),
    email_verified BOOLEAN      NOT NULL DEFAULT false,
    last_login_at  TIMESTAMPTZ,
    created_at     TIMESTAMPTZ  NOT NULL DEFAULT now(),
    updated_at     TIMESTAMPTZ  NOT NULL DEFAULT now(),
    created_by     INTEGER REFERENCES users(id)
);
-- Email unique per tenant, case-insensitive.
CREATE UNIQUE INDEX users_email_lower ON users (lower(email));
CREATE INDEX users_created ON users (created_at, id);
CREATE INDEX users_active_admins ON users (id) WHERE role = 'admin' AND status = 'active';

-- Password reset tokens: only the SHA-256 of the token is stored (column `token`, as in seed 004).
CREATE TABLE password_reset_tokens (
    id         TEXT PRIMARY KEY,                          -- ULID
    user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    token      VARCHAR(255) UNIQUE NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    used       BOOLEAN NOT NULL DEFAULT false,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX password_reset_tokens_user ON password_reset_tokens (user_id) WHERE NOT used;

-- Refresh tokens, hashed at rest. Each login starts a family; each refresh rotates within
-- it (the old row gets revoked_at + replaced_by). Presenting a rotated token again revokes
-- the whole family.
CREATE TABLE refresh_tokens (
    jti         TEXT PRIMARY KEY,                         -- the token's ULID
    token_hash  TEXT NOT NULL UNIQUE,                     -- SHA-256 hex of the token
    user_id     INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    family_id   TEXT NOT NULL,
    replaced_by TEXT,                                     -- jti of the successor
    revoked_at  TIMESTAMPTZ,
    expires_at  TIMESTAMPTZ NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_user_live ON refresh_tokens (user_id) WHERE revoked_at IS NULL;

-- Audit trail of profile, role, status and password changes (who, what, old -> new, when).
CREATE TABLE user_audit (
    id         BIGSERIAL PRIMARY KEY,
    user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    actor_id   INTEGER,                                   -- NULL: the user through a reset link, or the system
    field      VARCHAR(50) NOT NULL,
    old_value  TEXT,
    new_value  TEXT,
    changed_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX user_audit_user ON user_audit (user_id, id DESC);
