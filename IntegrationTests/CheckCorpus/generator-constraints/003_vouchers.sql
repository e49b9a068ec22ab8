-- A pattern with a look-ahead (at least one digit): beyond what check generates.
CREATE TABLE vouchers (
    id serial PRIMARY KEY,
    code text NOT NULL CONSTRAINT voucher_code_format CHECK (code ~ '^(?=.*[0-9])[A-Z0-9]{8}$')
);

CREATE FUNCTION voucher_issued() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('vouchers', NEW.id::text);
    RETURN NULL;
END
$$;
CREATE TRIGGER voucher_issued AFTER INSERT ON vouchers FOR EACH ROW EXECUTE FUNCTION voucher_issued();
