SELECT E'\\'', e'\\\\', xE'a', U&'\\0041';
