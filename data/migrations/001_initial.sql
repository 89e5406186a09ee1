-- 001: the five schemas and the data foundation tables.
-- Conventions: ids are VARCHAR (CRM ids are strings); money is DECIMAL(18,2) in the
-- account currency; timestamps are naive UTC; every crm row says which system it
-- came from (source) and which import wrote it last (import_id).

CREATE SCHEMA IF NOT EXISTS crm;
CREATE SCHEMA IF NOT EXISTS ref;
CREATE SCHEMA IF NOT EXISTS foundation;
CREATE SCHEMA IF NOT EXISTS ops;
CREATE SCHEMA IF NOT EXISTS truth;

-- crm: the system-of-record mirror -------------------------------------------

CREATE TABLE crm.users (
    user_id      VARCHAR PRIMARY KEY,
    name         VARCHAR NOT NULL,
    email        VARCHAR,
    role         VARCHAR NOT NULL,          -- rep | manager | executive | admin | other
    manager_id   VARCHAR,
    team         VARCHAR,
    region       VARCHAR,
    is_active    BOOLEAN NOT NULL DEFAULT TRUE,
    created_at   TIMESTAMP,
    source       VARCHAR NOT NULL,
    import_id    INTEGER
);

CREATE TABLE crm.accounts (
    account_id        VARCHAR PRIMARY KEY,
    name              VARCHAR NOT NULL,
    website           VARCHAR,
    industry          VARCHAR,
    employees         INTEGER,
    annual_revenue    DOUBLE,              -- USD per year
    year_founded      INTEGER,
    street            VARCHAR,
    city              VARCHAR,
    state             VARCHAR,
    postal_code       VARCHAR,
    country           VARCHAR,
    phone             VARCHAR,
    account_type      VARCHAR,             -- prospect | customer | partner | other
    parent_account_id VARCHAR,
    owner_id          VARCHAR,
    created_at        TIMESTAMP,
    updated_at        TIMESTAMP,
    source            VARCHAR NOT NULL,
    import_id         INTEGER
);

CREATE TABLE crm.contacts (
    contact_id     VARCHAR PRIMARY KEY,
    account_id     VARCHAR,
    first_name     VARCHAR,
    last_name      VARCHAR,
    email          VARCHAR,
    phone          VARCHAR,
    title          VARCHAR,
    department     VARCHAR,
    city           VARCHAR,
    country        VARCHAR,
    is_active      BOOLEAN NOT NULL DEFAULT TRUE,   -- FALSE once they left the company
    email_bounced  BOOLEAN NOT NULL DEFAULT FALSE,
    email_opt_out  BOOLEAN NOT NULL DEFAULT FALSE,
    do_not_contact BOOLEAN NOT NULL DEFAULT FALSE,
    owner_id       VARCHAR,
    created_at     TIMESTAMP,
    updated_at     TIMESTAMP,
    source         VARCHAR NOT NULL,
    import_id      INTEGER
);

CREATE TABLE crm.opportunities (
    opportunity_id    VARCHAR PRIMARY KEY,
    account_id        VARCHAR,
    owner_id          VARCHAR,
    name              VARCHAR NOT NULL,
    stage             VARCHAR NOT NULL,
    amount            DECIMAL(18, 2),
    close_date        DATE,
    forecast_category VARCHAR,             -- pipeline | best_case | commit | closed | omitted
    probability       DOUBLE,              -- the CRM's default for the stage, 0..1
    opportunity_type  VARCHAR,             -- new_business | expansion | renewal
    lead_source       VARCHAR,
    product           VARCHAR,
    competitor        VARCHAR,
    next_step         VARCHAR,
    is_closed         BOOLEAN NOT NULL,
    is_won            BOOLEAN NOT NULL,
    created_at        TIMESTAMP,           -- some exports lack it for deals not yet engaged
    updated_at        TIMESTAMP,
    stage_changed_at  TIMESTAMP,
    source            VARCHAR NOT NULL,
    import_id         INTEGER,
    CHECK (amount IS NULL OR amount >= 0),
    CHECK (NOT is_won OR is_closed)
);

-- Which contacts play which part in a deal (Salesforce OpportunityContactRole).
CREATE TABLE crm.opportunity_contacts (
    opportunity_id VARCHAR NOT NULL,
    contact_id     VARCHAR NOT NULL,
    role           VARCHAR,                -- champion | economic_buyer | decision_maker | technical_buyer | influencer | user | other
    is_primary     BOOLEAN NOT NULL DEFAULT FALSE,
    added_at       TIMESTAMP,
    source         VARCHAR NOT NULL,
    import_id      INTEGER,
    PRIMARY KEY (opportunity_id, contact_id)
);

-- One row per change: the opportunity's stage, amount, close date and forecast
-- category as they stood from changed_at on (Salesforce OpportunityHistory shape).
-- The as-of state of any deal at time t is its last row with changed_at <= t.
CREATE TABLE crm.opportunity_history (
    history_id        VARCHAR PRIMARY KEY,
    opportunity_id    VARCHAR NOT NULL,
    changed_at        TIMESTAMP NOT NULL,
    stage             VARCHAR NOT NULL,
    amount            DECIMAL(18, 2),
    close_date        DATE,
    forecast_category VARCHAR,
    probability       DOUBLE,
    changed_by        VARCHAR,
    source            VARCHAR NOT NULL,
    import_id         INTEGER
);

CREATE TABLE crm.activities (
    activity_id      VARCHAR PRIMARY KEY,
    activity_type    VARCHAR NOT NULL,     -- email | call | meeting | task
    direction        VARCHAR,              -- outbound | inbound | two_way (held meetings, connected calls)
    status           VARCHAR NOT NULL,     -- completed | scheduled | cancelled
    occurred_at      TIMESTAMP NOT NULL,   -- in the future for scheduled meetings
    account_id       VARCHAR,
    contact_id       VARCHAR,
    opportunity_id   VARCHAR,
    owner_id         VARCHAR,
    subject          VARCHAR,
    duration_minutes INTEGER,
    source           VARCHAR NOT NULL,
    import_id        INTEGER
);

-- What each rep told their manager, per period, at each submission.
CREATE TABLE crm.forecast_submissions (
    submission_id    VARCHAR PRIMARY KEY,
    user_id          VARCHAR NOT NULL,
    period_type      VARCHAR NOT NULL,     -- month | quarter
    period_start     DATE NOT NULL,
    submitted_at     TIMESTAMP NOT NULL,
    commit_amount    DECIMAL(18, 2) NOT NULL,
    best_case_amount DECIMAL(18, 2),
    source           VARCHAR NOT NULL,
    import_id        INTEGER,
    CHECK (period_type IN ('month', 'quarter'))
);

-- ref: third-party reference data ---------------------------------------------

CREATE TABLE ref.enrichment (
    provider       VARCHAR NOT NULL,
    domain         VARCHAR NOT NULL,       -- lower-case registrable domain, the lookup key
    company_name   VARCHAR,
    industry       VARCHAR,
    employees      INTEGER,
    annual_revenue DOUBLE,
    country        VARCHAR,
    city           VARCHAR,
    as_of          DATE NOT NULL,
    PRIMARY KEY (provider, domain)
);

CREATE TABLE ref.news (
    news_id      VARCHAR PRIMARY KEY,
    domain       VARCHAR,
    company_name VARCHAR,
    published_at TIMESTAMP NOT NULL,
    headline     VARCHAR NOT NULL,
    summary      VARCHAR,
    url          VARCHAR,
    source       VARCHAR NOT NULL
);

-- foundation: resolved identities ---------------------------------------------

CREATE TABLE foundation.entity_map (
    object_type VARCHAR NOT NULL,          -- account | contact
    record_id   VARCHAR NOT NULL,
    entity_id   VARCHAR NOT NULL,
    confidence  DOUBLE NOT NULL,
    method      VARCHAR NOT NULL,
    updated_at  TIMESTAMP NOT NULL,
    PRIMARY KEY (object_type, record_id),
    CHECK (confidence BETWEEN 0 AND 1)
);

-- ops: imports and data-quality snapshots ---------------------------------------

CREATE SEQUENCE ops.import_seq START 1;

CREATE TABLE ops.imports (
    import_id   INTEGER PRIMARY KEY,
    format      VARCHAR NOT NULL,          -- generator | salesforce | hubspot | maven | ...
    location    VARCHAR NOT NULL,          -- directory or generator parameters
    as_of       TIMESTAMP NOT NULL,        -- the moment the data describes ("today" in it)
    started_at  TIMESTAMP NOT NULL,
    finished_at TIMESTAMP NOT NULL,
    row_counts  JSON NOT NULL              -- {"crm.accounts": 1000, ...}
);

-- The content hash of every imported file, so the same export is never loaded twice.
CREATE TABLE ops.import_files (
    sha256    VARCHAR PRIMARY KEY,
    import_id INTEGER NOT NULL,
    file_name VARCHAR NOT NULL,
    rows      BIGINT NOT NULL
);

CREATE SEQUENCE ops.dq_snapshot_seq START 1;

CREATE TABLE ops.dq_snapshots (
    snapshot_id INTEGER PRIMARY KEY,
    taken_at    TIMESTAMP NOT NULL,
    as_of       TIMESTAMP,
    score       DOUBLE NOT NULL,           -- 0..100
    summary     JSON NOT NULL
);

-- One measured figure of a snapshot: completeness of a field, a duplicate rate,
-- violations of a rule. value = numerator / denominator where that makes sense.
CREATE TABLE ops.dq_metrics (
    snapshot_id INTEGER NOT NULL,
    check_kind  VARCHAR NOT NULL,          -- completeness | duplicates_exact | duplicates_suspected | definition | stale | phantom
    object_type VARCHAR NOT NULL,
    item        VARCHAR NOT NULL,          -- field, rule or stage the figure is about
    numerator   BIGINT NOT NULL,
    denominator BIGINT NOT NULL,
    value       DOUBLE,
    PRIMARY KEY (snapshot_id, check_kind, object_type, item)
);

-- truth: what really happened in a generated company (never read by agents) ----

CREATE TABLE truth.generation (
    seed         BIGINT NOT NULL,
    scale        VARCHAR NOT NULL,
    as_of        TIMESTAMP NOT NULL,
    generated_at TIMESTAMP NOT NULL,
    params       JSON NOT NULL
);

-- The real-world entity behind every account and contact record.
CREATE TABLE truth.entities (
    object_type    VARCHAR NOT NULL,
    record_id      VARCHAR NOT NULL,
    true_entity_id VARCHAR NOT NULL,
    PRIMARY KEY (object_type, record_id)
);

-- Every defect the generator injected, one row each.
CREATE TABLE truth.defects (
    defect_class VARCHAR NOT NULL,  -- duplicate_account | duplicate_contact | missing_required_field | wrong_firmographics | provider_error | stage_violation | phantom_deal | departed_champion
    object_type  VARCHAR NOT NULL,
    record_id    VARCHAR NOT NULL,
    field        VARCHAR,
    detail       VARCHAR
);

CREATE TABLE truth.firmographics (
    account_id     VARCHAR PRIMARY KEY,
    industry       VARCHAR,
    employees      INTEGER,
    annual_revenue DOUBLE,
    country        VARCHAR
);

CREATE TABLE truth.deal_outcomes (
    opportunity_id VARCHAR PRIMARY KEY,
    outcome        VARCHAR NOT NULL,       -- won | lost | open
    outcome_date   DATE,                   -- when it was really won or lost
    won_amount     DECIMAL(18, 2),
    is_phantom     BOOLEAN NOT NULL,       -- lost in reality, still open in the CRM
    slip_count     INTEGER NOT NULL,       -- close-date pushes over its life
    win_probability DOUBLE                 -- the hidden process's chance at creation
);

CREATE TABLE truth.slips (
    opportunity_id VARCHAR NOT NULL,
    slipped_at     TIMESTAMP NOT NULL,
    old_close_date DATE NOT NULL,
    new_close_date DATE NOT NULL,
    out_of_period  BOOLEAN NOT NULL        -- moved into a later quarter
);

CREATE TABLE truth.champion_departures (
    contact_id     VARCHAR NOT NULL,
    opportunity_id VARCHAR,
    departed_at    DATE NOT NULL
);

CREATE TABLE truth.rep_profiles (
    user_id     VARCHAR PRIMARY KEY,
    skill       DOUBLE NOT NULL,          -- effect on win odds
    commit_bias DOUBLE NOT NULL,          -- < 1 sandbagger, > 1 happy ears
    insight     DOUBLE NOT NULL           -- how much private knowledge reaches the commit, 0..1
);

CREATE TABLE truth.revenue (
    period_type  VARCHAR NOT NULL,
    period_start DATE NOT NULL,
    owner_id     VARCHAR NOT NULL,
    won_amount   DECIMAL(18, 2) NOT NULL,
    won_deals    INTEGER NOT NULL,
    PRIMARY KEY (period_type, period_start, owner_id)
);
