-- The service role's Kafka positions only move forward: a backward (or sideways) move would re-read or
-- skip billable records. The consumer already writes GREATEST(old, new); this holds even against a session
-- that has the role's credentials. A deliberate reset is the owner's job (deploy/runbooks/README.md).
CREATE FUNCTION consumer_offsets_forward_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- The table's owner (and a superuser, a member of every role) may reset; everyone else moves forward.
    IF pg_has_role(current_user, (SELECT relowner FROM pg_class WHERE oid = TG_RELID), 'MEMBER') THEN
        RETURN NEW;
    END IF;
    IF (NEW.consumer_group, NEW.topic, NEW.kafka_partition)
       IS DISTINCT FROM (OLD.consumer_group, OLD.topic, OLD.kafka_partition) THEN
        RAISE EXCEPTION 'consumer_offsets: % may not move a position to another partition', current_user
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF NEW.next_offset < OLD.next_offset THEN
        RAISE EXCEPTION 'consumer_offsets: % may only move % % [%] forward (% -> %)', current_user,
            OLD.consumer_group, OLD.topic, OLD.kafka_partition, OLD.next_offset, NEW.next_offset
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'a reset is the owner''s job: see deploy/runbooks/README.md';
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER consumer_offsets_forward_only BEFORE UPDATE ON consumer_offsets
    FOR EACH ROW EXECUTE FUNCTION consumer_offsets_forward_only();
