-- ERC-8004 event store: Ponder indexes the Identity, Reputation and Validation registries of several chains
-- into one events table; the Rust event processor LISTENs on new_event and reads the event by its id.
-- (Production makes events a TimescaleDB hypertable; that changes nothing about the trigger and is left
-- out here so the example runs on plain PostgreSQL.)

CREATE TYPE public.registry_kind AS ENUM ('identity', 'reputation', 'validation');

CREATE TABLE public.events (
    -- Ponder's id: chain, transaction and log index, e.g. '11155111-0x…-3'. Bounded, as every column the
    -- notification carries must be.
    id               varchar(128)         PRIMARY KEY,
    chain_id         integer              NOT NULL CHECK (chain_id > 0),
    block_number     bigint               NOT NULL CHECK (block_number >= 0),
    block_hash       varchar(66)          NOT NULL,
    transaction_hash varchar(66)          NOT NULL,
    log_index        integer              NOT NULL CHECK (log_index >= 0),
    event_type       varchar(64)          NOT NULL,  -- 'AgentRegistered', 'FeedbackGiven', …
    registry         public.registry_kind NOT NULL,
    agent_id         numeric(78, 0),                 -- uint256 token id, when the event names an agent
    data             jsonb,                          -- decoded event arguments: any size, never notified
    "timestamp"      bigint               NOT NULL,  -- block time, seconds since the epoch
    invalidated      boolean              NOT NULL DEFAULT false,  -- set when a reorg drops the block
    created_at       timestamptz          NOT NULL DEFAULT now()
);

CREATE INDEX events_chain_block ON public.events (chain_id, block_number);

-- The latest fully indexed block per chain; Ponder upserts it after each block. Not notified.
CREATE TABLE public.checkpoints (
    chain_id     integer     PRIMARY KEY CHECK (chain_id > 0),
    block_number bigint      NOT NULL CHECK (block_number >= 0),
    block_hash   varchar(66) NOT NULL,
    updated_at   timestamptz NOT NULL DEFAULT now()
);
