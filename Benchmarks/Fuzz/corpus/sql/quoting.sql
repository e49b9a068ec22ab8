-- a comment; with a semicolon
SELECT 'a;b', 'it''s;', E'back\\';slash', "odd;name" FROM t; /* block; /* nested; */ still */
CREATE FUNCTION f() RETURNS trigger LANGUAGE plpgsql AS $body$
BEGIN
  PERFORM pg_notify('c', 'x;y');  -- inside the body
  RETURN NEW;
END $body$;
CREATE FUNCTION g() RETURNS int LANGUAGE sql AS $$ SELECT 1; $$;
SELECT $1, a$b FROM t
