SELECT 1;
/* open /* nested */ comment