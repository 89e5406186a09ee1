-- 003: what identity resolution found, per hygiene run. foundation.entity_map (001)
-- holds the identities people approved; this holds the resolver's view, with its
-- confidence, so others can see a suspected duplicate before anyone decides on it.

CREATE TABLE ops.identity_clusters (
    run_id      VARCHAR NOT NULL,
    object_type VARCHAR NOT NULL,          -- accounts | contacts
    record_id   VARCHAR NOT NULL,
    cluster_id  VARCHAR NOT NULL,          -- the record the cluster's survivor is
    cluster_size INTEGER NOT NULL,
    confidence  DOUBLE NOT NULL,           -- mean match probability with the rest of the cluster
    PRIMARY KEY (run_id, object_type, record_id)
);
