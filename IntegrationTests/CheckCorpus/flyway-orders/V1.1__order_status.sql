-- V1.1 runs after V1 and before V2 (a version part, not text).
CREATE TYPE order_status AS ENUM ('new', 'paid', 'shipped');
ALTER TABLE orders ADD COLUMN status order_status NOT NULL DEFAULT 'new';
