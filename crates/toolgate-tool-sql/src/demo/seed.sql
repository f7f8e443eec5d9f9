-- Deterministic demo data for schema.sql: about 3,200 rows.
--
-- "Random" choices come from multiplicative hashes modulo the prime 2^31 - 1
-- (multipliers 950706376, 742938285 and 1226874159, after L'Ecuyer), so every start
-- builds exactly the same database and tests can rely on it. The snapshot date is
-- 2026-06-15: orders run from 2025-01-01 up to the day before, recent ones are
-- still pending, paid or shipped.

BEGIN;

INSERT INTO products (id, sku, name, category, unit_price, stock) VALUES
    (1, 'ELC-1001', 'Wireless Noise-Cancelling Headphones', 'Electronics', 189.00, 42),
    (2, 'ELC-1002', 'USB-C Charging Hub, 7 Ports', 'Electronics', 39.90, 310),
    (3, 'ELC-1003', '27-inch 4K Monitor', 'Electronics', 329.00, 18),
    (4, 'ELC-1004', 'Mechanical Keyboard, Brown Switches', 'Electronics', 109.00, 64),
    (5, 'ELC-1005', 'Portable Bluetooth Speaker', 'Electronics', 59.99, 125),
    (6, 'HOM-2001', 'Espresso Machine', 'Home & Kitchen', 249.00, 23),
    (7, 'HOM-2002', 'Cast Iron Skillet, 28 cm', 'Home & Kitchen', 44.50, 88),
    (8, 'HOM-2003', 'Chef''s Knife, 20 cm', 'Home & Kitchen', 79.00, 57),
    (9, 'HOM-2004', 'Electric Kettle, 1.7 l', 'Home & Kitchen', 34.99, 140),
    (10, 'HOM-2005', 'Bamboo Cutting Board Set', 'Home & Kitchen', 24.90, 205),
    (11, 'BOK-3001', 'The Pragmatic Programmer', 'Books', 42.00, 75),
    (12, 'BOK-3002', 'Designing Data-Intensive Applications', 'Books', 48.50, 61),
    (13, 'BOK-3003', 'Dune (Paperback)', 'Books', 12.99, 230),
    (14, 'BOK-3004', 'The Art of French Cooking', 'Books', 35.00, 40),
    (15, 'BOK-3005', 'A Field Guide to European Birds', 'Books', 24.00, 52),
    (16, 'SPO-4001', 'Trail Running Shoes', 'Sports & Outdoors', 129.00, 96),
    (17, 'SPO-4002', 'Yoga Mat, 6 mm', 'Sports & Outdoors', 29.90, 180),
    (18, 'SPO-4003', 'Insulated Water Bottle, 750 ml', 'Sports & Outdoors', 24.95, 260),
    (19, 'SPO-4004', 'Two-Person Hiking Tent', 'Sports & Outdoors', 189.00, 14),
    (20, 'SPO-4005', 'Adjustable Dumbbells, 20 kg', 'Sports & Outdoors', 149.00, 33),
    (21, 'CLO-5001', 'Merino Wool Sweater', 'Clothing', 89.00, 70),
    (22, 'CLO-5002', 'Waterproof Rain Jacket', 'Clothing', 119.00, 45),
    (23, 'CLO-5003', 'Organic Cotton T-Shirt', 'Clothing', 19.90, 420),
    (24, 'CLO-5004', 'Slim Fit Chinos', 'Clothing', 59.00, 110),
    (25, 'CLO-5005', 'Wool Beanie', 'Clothing', 22.00, 150),
    (26, 'TOY-6001', 'Wooden Train Set', 'Toys & Games', 49.90, 38),
    (27, 'TOY-6002', 'Strategy Board Game', 'Toys & Games', 39.99, 90),
    (28, 'TOY-6003', '1000-Piece Jigsaw Puzzle', 'Toys & Games', 17.99, 145),
    (29, 'TOY-6004', 'Remote Control Car', 'Toys & Games', 64.90, 27),
    (30, 'TOY-6005', 'Building Blocks Starter Box', 'Toys & Games', 29.99, 160),
    (31, 'OFF-7001', 'Ergonomic Office Chair', 'Office', 279.00, 12),
    (32, 'OFF-7002', 'Standing Desk Converter', 'Office', 199.00, 20),
    (33, 'OFF-7003', 'A5 Dotted Notebook', 'Office', 12.50, 500),
    (34, 'OFF-7004', 'Gel Pens, 12-Pack', 'Office', 9.99, 380),
    (35, 'OFF-7005', 'LED Desk Lamp', 'Office', 45.00, 73),
    (36, 'BEA-8001', 'Vitamin C Serum, 30 ml', 'Beauty', 27.50, 190),
    (37, 'BEA-8002', 'Hydrating Face Cream, 50 ml', 'Beauty', 32.00, 165),
    (38, 'BEA-8003', 'Natural Bristle Hair Brush', 'Beauty', 21.90, 84),
    (39, 'BEA-8004', 'Sunscreen SPF 50, 100 ml', 'Beauty', 16.95, 275),
    (40, 'BEA-8005', 'Beard Grooming Kit', 'Beauty', 38.00, 49);

-- 240 customers. A place is [country, city, name pool]; countries repeat by weight.
WITH RECURSIVE
    seq(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM seq WHERE n < 240),
    pools(places, names) AS (SELECT
        '[["DE","Berlin","de"],["DE","Munich","de"],["DE","Hamburg","de"],
          ["DE","Cologne","de"],["DE","Frankfurt am Main","de"],["DE","Stuttgart","de"],
          ["US","New York","en"],["US","San Francisco","en"],["US","Chicago","en"],
          ["US","Austin","en"],["US","Seattle","en"],["US","Boston","en"],
          ["FR","Paris","fr"],["FR","Lyon","fr"],["FR","Marseille","fr"],["FR","Toulouse","fr"],
          ["GB","London","en"],["GB","Manchester","en"],["GB","Edinburgh","en"],["GB","Bristol","en"],
          ["NL","Amsterdam","nl"],["NL","Rotterdam","nl"],["NL","Utrecht","nl"],
          ["ES","Madrid","es"],["ES","Barcelona","es"],["ES","Valencia","es"],
          ["IT","Milan","it"],["IT","Rome","it"],["IT","Turin","it"],
          ["AT","Vienna","de"],["AT","Graz","de"],["CH","Zurich","de"],["CH","Basel","de"],
          ["SE","Stockholm","sv"],["SE","Gothenburg","sv"],["PL","Warsaw","pl"],
          ["PL","Krakow","pl"],["CA","Toronto","en"],["CA","Vancouver","en"]]',
        '{"de":{"first":["Lukas","Anna","Felix","Lena","Jonas","Marie","Paul","Sophie",
                         "Leon","Hannah","Maximilian","Laura"],
                "last":["Mueller","Schmidt","Schneider","Fischer","Weber","Meyer","Wagner",
                        "Becker","Schulz","Hoffmann","Koch","Richter"]},
          "en":{"first":["James","Olivia","Oliver","Emma","William","Amelia","Noah",
                         "Charlotte","Jack","Sophia","Henry","Grace"],
                "last":["Smith","Johnson","Williams","Brown","Jones","Taylor","Davies",
                        "Wilson","Evans","Miller","Clarke","Walker"]},
          "fr":{"first":["Louis","Camille","Gabriel","Chloe","Jules","Manon","Hugo","Lea",
                         "Arthur","Ines","Raphael","Juliette"],
                "last":["Martin","Bernard","Dubois","Thomas","Robert","Richard","Petit",
                        "Durand","Leroy","Moreau","Simon","Laurent"]},
          "es":{"first":["Hugo","Lucia","Mateo","Sofia","Martin","Martina","Pablo","Valeria",
                         "Alejandro","Paula","Daniel","Carmen"],
                "last":["Garcia","Rodriguez","Gonzalez","Fernandez","Lopez","Martinez",
                        "Sanchez","Perez","Gomez","Ruiz","Diaz","Moreno"]},
          "it":{"first":["Leonardo","Giulia","Francesco","Aurora","Alessandro","Alice",
                         "Lorenzo","Ginevra","Matteo","Beatrice","Tommaso","Chiara"],
                "last":["Rossi","Russo","Ferrari","Esposito","Bianchi","Romano","Colombo",
                        "Ricci","Marino","Greco","Bruno","Gallo"]},
          "nl":{"first":["Daan","Emma","Sem","Julia","Lucas","Mila","Levi","Tess","Finn",
                         "Sophie","Milan","Zoe"],
                "last":["de Jong","Jansen","de Vries","van den Berg","van Dijk","Bakker",
                        "Janssen","Visser","Smit","Meijer","de Boer","Mulder"]},
          "sv":{"first":["William","Alice","Liam","Maja","Elias","Elsa","Hugo","Astrid",
                         "Oliver","Wilma","Lucas","Freja"],
                "last":["Andersson","Johansson","Karlsson","Nilsson","Eriksson","Larsson",
                        "Olsson","Persson","Svensson","Gustafsson","Pettersson","Jonsson"]},
          "pl":{"first":["Jan","Zofia","Antoni","Hanna","Jakub","Julia","Aleksander","Maja",
                         "Franciszek","Zuzanna","Szymon","Lena"],
                "last":["Nowak","Kowalski","Wisniewski","Wojcik","Kowalczyk","Kaminski",
                        "Lewandowski","Zielinski","Szymanski","Wozniak","Dabrowski",
                        "Kozlowski"]}}'),
    hashed AS (
        SELECT n, names,
               json_extract(places, '$[' || ((n * 950706376) % 2147483647
                   % json_array_length(places)) || ']') AS place,
               (n * 742938285) % 2147483647 AS r2,
               (n * 1226874159) % 2147483647 AS r3
        FROM seq, pools),
    named AS (
        SELECT n, r2, r3,
               json_extract(place, '$[0]') AS country,
               json_extract(place, '$[1]') AS city,
               json_extract(names, '$.' || json_extract(place, '$[2]')
                   || '.first[' || (r2 % 12) || ']') AS first_name,
               json_extract(names, '$.' || json_extract(place, '$[2]')
                   || '.last[' || (r3 % 12) || ']') AS last_name
        FROM hashed)
INSERT INTO customers (id, name, email, city, country, created_at)
SELECT n,
       first_name || ' ' || last_name,
       lower(replace(first_name || '.' || last_name, ' ', '')) || n || '@'
           || json_extract('["example.com","example.org","example.net"]', '$[' || (r2 % 3) || ']'),
       city,
       country,
       strftime('%Y-%m-%dT%H:%M:%SZ', '2024-01-01', '+' || (n * 540 / 240) || ' days',
                '+' || (r3 % 86400) || ' seconds')
FROM named;

-- 800 orders, one every 0.66 days on average, ids in time order.
WITH RECURSIVE
    seq(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM seq WHERE n < 800),
    hashed AS (
        SELECT n,
               (n - 1) * 530 / 800 AS day,
               (n * 950706376) % 2147483647 AS r1,
               (n * 742938285) % 2147483647 AS r2,
               (n * 1226874159) % 2147483647 AS r3
        FROM seq),
    dated AS (
        SELECT n, r1, r2, r3, 530 - day AS days_ago,
               strftime('%Y-%m-%dT%H:%M:%SZ', '2025-01-01', '+' || day || ' days',
                        '+' || (25200 + r2 % 57600) || ' seconds') AS ordered_at,
               r3 % 100 AS roll
        FROM hashed),
    stated AS (
        SELECT *,
               CASE
                   WHEN roll < 7 THEN 'cancelled'
                   WHEN days_ago <= 5 THEN CASE WHEN roll < 50 THEN 'pending' ELSE 'paid' END
                   WHEN days_ago <= 12 THEN CASE WHEN roll < 35 THEN 'paid' ELSE 'shipped' END
                   WHEN days_ago <= 25 THEN CASE WHEN roll < 40 THEN 'shipped' ELSE 'delivered' END
                   ELSE 'delivered'
               END AS status,
               strftime('%Y-%m-%dT%H:%M:%SZ', ordered_at, '+' || (1 + r1 % 3) || ' days',
                        '+' || (r2 % 7200) || ' seconds') AS shipped
        FROM dated)
INSERT INTO orders (id, customer_id, status, ordered_at, shipped_at, delivered_at)
SELECT n,
       1 + r1 % 240,
       status,
       ordered_at,
       CASE WHEN status IN ('shipped', 'delivered') THEN shipped END,
       CASE WHEN status = 'delivered'
            THEN strftime('%Y-%m-%dT%H:%M:%SZ', shipped, '+' || (2 + r3 % 4) || ' days',
                          '+' || (r1 % 14400) || ' seconds')
       END
FROM stated;

-- One to four distinct products per order, at the catalogue price.
WITH RECURSIVE
    k(k) AS (SELECT 1 UNION ALL SELECT k + 1 FROM k WHERE k < 4),
    lines AS (
        SELECT o.id AS order_id, k.k,
               1 + ((o.id * 950706376) % 2147483647 + k.k * 13) % 40 AS product_id,
               ((o.id * 4 + k.k) * 742938285) % 2147483647 % 10 AS roll
        FROM orders o, k
        WHERE k.k <= 1 + (o.id * 1226874159) % 2147483647 % 4)
INSERT INTO order_items (order_id, product_id, quantity, unit_price)
SELECT l.order_id, l.product_id,
       CASE WHEN l.roll < 6 THEN 1 WHEN l.roll < 9 THEN 2 ELSE 3 END,
       p.unit_price
FROM lines l JOIN products p ON p.id = l.product_id
ORDER BY l.order_id, l.k;

-- 150 support tickets; most concern an order, some are general questions.
WITH RECURSIVE
    seq(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM seq WHERE n < 150),
    subjects(s) AS (SELECT
        '["Where is my order?","Item arrived damaged","Request for a refund",
          "Wrong size delivered","Need a copy of my invoice","Change of delivery address",
          "Question about a product","Payment was declined","Missing item in parcel",
          "How do I return an item?","Discount code does not work","Cannot log in to my account"]'),
    hashed AS (
        SELECT n, s,
               1 + (n * 950706376) % 2147483647 % 800 AS order_id,
               (n * 742938285) % 2147483647 AS r2,
               (n * 1226874159) % 2147483647 AS r3
        FROM seq, subjects),
    opened AS (
        SELECT h.n, h.s, h.r2, h.r3,
               CASE WHEN h.r3 % 100 < 15 THEN NULL ELSE o.id END AS order_id,
               CASE WHEN h.r3 % 100 < 15 THEN 1 + h.r2 % 240 ELSE o.customer_id END
                   AS customer_id,
               min(strftime('%Y-%m-%dT%H:%M:%SZ', o.ordered_at, '+' || (1 + h.r2 % 12) || ' days',
                            '+' || (h.r3 % 36000) || ' seconds'),
                   strftime('%Y-%m-%dT%H:%M:%SZ', '2026-06-14', '+' || (28800 + h.r3 % 36000)
                            || ' seconds')) AS opened_at
        FROM hashed h JOIN orders o ON o.id = h.order_id),
    stated AS (
        SELECT *,
               CASE
                   WHEN opened_at >= '2026-05-25' THEN
                       CASE WHEN r2 % 3 = 0 THEN 'pending' ELSE 'open' END
                   WHEN r2 % 10 < 6 THEN 'closed'
                   ELSE 'resolved'
               END AS status
        FROM opened)
INSERT INTO support_tickets
    (id, customer_id, order_id, subject, priority, status, opened_at, closed_at)
SELECT n,
       customer_id,
       order_id,
       CASE WHEN order_id IS NULL
            THEN json_extract(s, '$[' || (6 + r3 % 6) || ']')
            ELSE json_extract(s, '$[' || (r3 % 12) || ']')
       END,
       CASE WHEN r2 % 20 = 0 THEN 'urgent' WHEN r2 % 20 < 5 THEN 'high'
            WHEN r2 % 20 < 16 THEN 'normal' ELSE 'low' END,
       status,
       opened_at,
       CASE WHEN status IN ('resolved', 'closed')
            THEN strftime('%Y-%m-%dT%H:%M:%SZ', opened_at, '+' || (3600 + r2 % 259200)
                          || ' seconds')
       END
FROM stated;

COMMIT;
