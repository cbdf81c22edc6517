-- Mail leaves from a queue in the database instead of from the event stream,
-- so one customer's burst cannot hold everyone else's mail behind it: the
-- sender takes the oldest waiting message of the user mailed longest ago.
-- Each user's own messages still leave in the order their events arrived.
ALTER TABLE notifications
    -- A failed attempt is retried at this time (doubling delays).
    ADD COLUMN next_attempt_at timestamptz NOT NULL DEFAULT now(),
    -- Claimed by a sender: nobody else sends it (unless the claim is stale).
    ADD COLUMN sending_since   timestamptz;

ALTER TABLE user_contacts
    ADD COLUMN last_mailed_at timestamptz;

-- The queue: each user's waiting messages, oldest first.
CREATE INDEX notifications_waiting ON notifications (user_id, created_at, notification_id)
    WHERE status = 'pending';

-- One message a second across every replica: a sender claims the next slot
-- by moving this one row's time forward (to the claim, then to when the mail
-- server answered), which also makes senders take turns.
CREATE TABLE mail_pace (
    singleton    boolean     PRIMARY KEY DEFAULT true CHECK (singleton),
    last_mail_at timestamptz NOT NULL DEFAULT '-infinity'
);
INSERT INTO mail_pace DEFAULT VALUES;
