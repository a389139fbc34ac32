-- Ledger scale-out (services/ledger/ownership.py): instances of one consumer group split a topic's partitions,
-- and each partition's row says who may write it. `epoch` goes up by one each time an instance claims the
-- partition from a Kafka group assignment; a batch locks its partitions' rows and goes on only while they
-- hold the epochs it claimed, so an instance that lost a partition (a zombie past its session timeout) has
-- its next transaction refused instead of writing after the new owner. `owner` names the claimant
-- (host:pid:nonce) for operators. Static assignments (TOLLGATE_LEDGER_PARTITIONS, the agreements consumer)
-- leave both as they are.
ALTER TABLE consumer_offsets
    ADD COLUMN epoch bigint NOT NULL DEFAULT 0 CHECK (epoch >= 0),
    ADD COLUMN owner text;

-- Beside 0004's guard on positions: the service role never lowers an epoch (a lower one would let an older
-- claim write again). The table's owner (and a superuser) may still reset, as in 0004.
CREATE FUNCTION consumer_offsets_epoch_forward() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.epoch < OLD.epoch
       AND NOT pg_has_role(current_user, (SELECT relowner FROM pg_class WHERE oid = TG_RELID), 'MEMBER') THEN
        RAISE EXCEPTION 'consumer_offsets: % may not lower the epoch of % % [%] (% -> %)', current_user,
            OLD.consumer_group, OLD.topic, OLD.kafka_partition, OLD.epoch, NEW.epoch
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER consumer_offsets_epoch_forward BEFORE UPDATE OF epoch ON consumer_offsets
    FOR EACH ROW EXECUTE FUNCTION consumer_offsets_epoch_forward();
