-- A Flyway callback: runs after every migrate, once the versioned and repeatable scripts have run.
COMMENT ON TABLE ${shipments_table} IS 'Shipments; changes are sent on ${channel}';
