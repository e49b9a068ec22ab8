-- One checkout, as the shop's application commits it: a new order, and an earlier one paid.
\set customer random(1, 50)
\set amount random(1, 500)
INSERT INTO shop.orders (customer_id, amount) VALUES (:customer, :amount);
UPDATE shop.orders SET status = 'paid' WHERE id = :customer;  -- a status change; 'paid' stays a string
