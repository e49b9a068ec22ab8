SELECT 'Straße', "日本" FROM é; SELECT $é$ x $é$;
SELECT '😀'́;