-- Documents are listed by what they belong to (a cluster's rules, a domain's clusters and
-- OAuth clients, a provider's protocols, a project's limits) through an index rather than
-- by reading every document of the kind. Values that must be unique among documents of
-- a kind (a cluster's audience, an identity provider's remote ids) are claimed in
-- `document_claims`, whose key keeps them unique when two writes race.
-- Documents written before this have no owner yet; the services fill it in at start.
ALTER TABLE documents ADD COLUMN owner TEXT NOT NULL DEFAULT '';
CREATE INDEX documents_owner ON documents (kind, owner);

CREATE TABLE document_claims (
    kind TEXT NOT NULL,
    claim TEXT NOT NULL,
    id TEXT NOT NULL,
    PRIMARY KEY (kind, claim)
);
CREATE INDEX document_claims_id ON document_claims (kind, id);
