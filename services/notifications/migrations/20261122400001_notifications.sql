-- What notifications knows of users (kept from user events), and every
-- message it was asked to send.

CREATE TABLE user_contacts (
    user_id    uuid PRIMARY KEY,
    email      text        NOT NULL,
    name       text        NOT NULL,
    deleted    boolean     NOT NULL DEFAULT false,
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE notifications (
    notification_id uuid PRIMARY KEY,
    event_id        uuid        NOT NULL UNIQUE,
    user_id         uuid        NOT NULL,
    kind            text        NOT NULL CHECK (kind IN ('welcome', 'order_confirmation', 'order_shipped')),
    recipient       text,
    subject         text        NOT NULL,
    body_text       text        NOT NULL,
    body_html       text        NOT NULL,
    status          text        NOT NULL CHECK (status IN ('pending', 'sent', 'failed')),
    attempts        integer     NOT NULL DEFAULT 0,
    last_error      text,
    created_at      timestamptz NOT NULL,
    sent_at         timestamptz
);

-- GET /notifications: newest first, alone or by user, kind, status.
CREATE INDEX notifications_by_created        ON notifications (created_at, notification_id);
CREATE INDEX notifications_by_user_created   ON notifications (user_id, created_at, notification_id);
CREATE INDEX notifications_by_kind_created   ON notifications (kind, created_at, notification_id);
CREATE INDEX notifications_by_status_created ON notifications (status, created_at, notification_id);
-- The pace of sending: when the last message left.
CREATE INDEX notifications_by_sent_at        ON notifications (sent_at) WHERE sent_at IS NOT NULL;
