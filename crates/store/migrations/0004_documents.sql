-- Low-volume configuration resources (legacy policy blobs, OAuth1 consumers, endpoint
-- groups and their associations, domain configurations, limits) stored as JSON documents
-- keyed by kind and id; their rules live in the domain layer.

CREATE TABLE documents (
    kind TEXT NOT NULL,
    id TEXT NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (kind, id)
);
