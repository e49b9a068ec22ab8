CREATE TABLE ${shipments_table} (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    order_id bigint NOT NULL,
    carrier text NOT NULL,
    state text NOT NULL DEFAULT 'label_created' CHECK (state IN ('label_created', 'in_transit', 'delivered'))
);
