-- 016: what a harder generated company needs to say (issue #17, docs/generator.md).
-- Owners work in their own time zone: the CRM keeps each user's zone (as Salesforce keeps
-- a user's TimeZoneSidKey); timestamps stay naive UTC. Importers leave it NULL.
ALTER TABLE crm.users ADD COLUMN time_zone VARCHAR;   -- IANA name, e.g. 'Europe/Berlin'

-- Every real change to a contact over the history and whether the CRM caught it: a
-- departure (field 'is_active', true -> false; caught when the CRM marks the person
-- inactive or bounced) and a stayer's new title, email or phone. A row with NOT in_crm is
-- a stale CRM value, which judges the hygiene agent without the agent reading truth.
CREATE TABLE truth.contact_changes (
    contact_id  VARCHAR NOT NULL,
    field       VARCHAR NOT NULL,       -- is_active | title | email | phone
    changed_at  TIMESTAMP NOT NULL,     -- when it really changed
    old_value   VARCHAR,
    new_value   VARCHAR,
    in_crm      BOOLEAN NOT NULL        -- the CRM holds the new value (or marks the leaver)
);
