-- An undo script (Flyway Teams): never part of a forward migration.
DROP TRIGGER orders_changed ON orders;
