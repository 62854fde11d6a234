-- The smallest round trip: what /db-status pays the database for, without Python in between.
SELECT 1;
