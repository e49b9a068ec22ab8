SELECT 1;
CREATE FUNCTION f() AS $x$ body $y$ $x