-- One single-row insert per transaction with a unique text value, the shape of POST /api/v1/users.
-- The table is made by evidence/pgbench.py before the run.
INSERT INTO atlas_bench_insert (email) VALUES ('pgbench-' || :client_id || '-' || random() || '@example.test');
