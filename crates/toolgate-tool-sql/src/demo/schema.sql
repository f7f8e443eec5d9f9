-- Schema of the embedded demo database: a small online shop.
-- Money is in EUR; timestamps are ISO-8601 text in UTC; countries are ISO 3166-1 alpha-2.

CREATE TABLE customers (
    id         INTEGER PRIMARY KEY,
    name       TEXT    NOT NULL,
    email      TEXT    NOT NULL UNIQUE,
    city       TEXT    NOT NULL,
    country    TEXT    NOT NULL CHECK (length(country) = 2),
    created_at TEXT    NOT NULL
);

CREATE TABLE products (
    id         INTEGER PRIMARY KEY,
    sku        TEXT    NOT NULL UNIQUE,
    name       TEXT    NOT NULL,
    category   TEXT    NOT NULL,
    unit_price REAL    NOT NULL CHECK (unit_price > 0),
    stock      INTEGER NOT NULL CHECK (stock >= 0)
);

CREATE TABLE orders (
    id           INTEGER PRIMARY KEY,
    customer_id  INTEGER NOT NULL REFERENCES customers (id),
    status       TEXT    NOT NULL
        CHECK (status IN ('pending', 'paid', 'shipped', 'delivered', 'cancelled')),
    ordered_at   TEXT    NOT NULL,
    shipped_at   TEXT,
    delivered_at TEXT
);

CREATE TABLE order_items (
    id         INTEGER PRIMARY KEY,
    order_id   INTEGER NOT NULL REFERENCES orders (id),
    product_id INTEGER NOT NULL REFERENCES products (id),
    quantity   INTEGER NOT NULL CHECK (quantity > 0),
    unit_price REAL    NOT NULL CHECK (unit_price > 0)
);

CREATE TABLE support_tickets (
    id          INTEGER PRIMARY KEY,
    customer_id INTEGER NOT NULL REFERENCES customers (id),
    order_id    INTEGER REFERENCES orders (id),
    subject     TEXT    NOT NULL,
    priority    TEXT    NOT NULL CHECK (priority IN ('low', 'normal', 'high', 'urgent')),
    status      TEXT    NOT NULL CHECK (status IN ('open', 'pending', 'resolved', 'closed')),
    opened_at   TEXT    NOT NULL,
    closed_at   TEXT
);

CREATE INDEX customers_country ON customers (country);
CREATE INDEX orders_customer ON orders (customer_id);
CREATE INDEX orders_ordered_at ON orders (ordered_at);
CREATE INDEX order_items_order ON order_items (order_id);
CREATE INDEX order_items_product ON order_items (product_id);
CREATE INDEX support_tickets_customer ON support_tickets (customer_id);
