//! What streams are made of: their names, positions and notifications.

use std::fmt::Write as _;
use std::sync::Arc;

/// The longest topic name, in bytes.
pub const MAX_TOPIC_BYTES: usize = 256;

/// A notification stream: `broadcast`, `topic:NAME` (one per topic) or
/// `client:ID` (targeted notifications to one session client).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StreamName(Arc<str>);

impl StreamName {
    /// The stream of `broadcast-notification`.
    pub fn broadcast() -> Self {
        Self("broadcast".into())
    }

    /// The stream of `topic`'s publications.
    pub fn topic(topic: &str) -> Self {
        Self(format!("topic:{topic}").into())
    }

    /// The stream of notifications sent to client `id`.
    pub fn client(id: &str) -> Self {
        Self(format!("client:{id}").into())
    }

    /// A stream name as a client or the store wrote it, if it is one.
    pub fn parse(name: &str) -> Option<Self> {
        let valid = name == "broadcast"
            || name.strip_prefix("topic:").is_some_and(|t| !t.is_empty())
            || name.strip_prefix("client:").is_some_and(|c| !c.is_empty());
        valid.then(|| Self(name.into()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Where a notification is in its stream. The epoch changes only when the
/// stream's history is lost; offsets grow by one per notification.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Position {
    /// The stream's epoch.
    pub epoch: Arc<str>,
    /// The offset: 0 before the first notification.
    pub offset: u64,
}

/// A notification as it is stored and delivered.
#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    /// The JSON-RPC notification object exactly as clients without a session
    /// receive it.
    pub text: Arc<str>,
    /// Clients that must not receive it (a broadcast's `exclude`).
    pub exclude: Arc<[String]>,
}

impl Notification {
    /// A notification for everyone its stream reaches.
    pub fn new(text: String) -> Self {
        Self {
            text: text.into(),
            exclude: Arc::new([]),
        }
    }

    /// Whether `client` is excluded.
    pub fn excludes(&self, client: &str) -> bool {
        self.exclude.iter().any(|excluded| excluded == client)
    }

    /// The text session clients receive: the same object with its position,
    /// `"position":{"stream":…,"epoch":…,"offset":…}`, as its last member.
    pub fn positioned(&self, stream: &StreamName, position: &Position) -> String {
        let plain = self.text.strip_suffix('}').unwrap_or(&self.text);
        let stream = serde_json::to_string(stream.as_str()).expect("a string serialises");
        let epoch = serde_json::to_string(&*position.epoch).expect("a string serialises");
        let mut text = String::with_capacity(plain.len() + stream.len() + 64);
        text.push_str(plain);
        let _ = write!(
            text,
            r#","position":{{"stream":{stream},"epoch":{epoch},"offset":{}}}}}"#,
            position.offset
        );
        text
    }
}

/// What a stream's history holds after a position.
#[derive(Debug, Clone, PartialEq)]
pub enum History {
    /// Every notification after the position, in offset order.
    Complete {
        /// The notifications and their offsets.
        entries: Vec<(u64, Notification)>,
        /// The stream's position now.
        top: Position,
    },
    /// The epoch changed or the history no longer covers the gap: nothing
    /// is returned.
    Incomplete {
        /// The stream's position now.
        top: Position,
    },
}

impl History {
    /// What `entries` (the kept notifications after `from`, in offset
    /// order, none past `top`) make of the gap from `from` to `top`.
    pub fn after(from: &Position, entries: Vec<(u64, Notification)>, top: Position) -> Self {
        if from.epoch == top.epoch
            && from.offset <= top.offset
            && entries.len() as u64 == top.offset - from.offset
        {
            Self::Complete { entries, top }
        } else {
            Self::Incomplete { top }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_names_are_checked() {
        assert_eq!(
            StreamName::parse("broadcast"),
            Some(StreamName::broadcast())
        );
        assert_eq!(
            StreamName::parse("topic:a:b"),
            Some(StreamName::topic("a:b"))
        );
        assert_eq!(StreamName::parse("topic:"), None);
        assert_eq!(StreamName::parse("client:"), None);
        assert_eq!(StreamName::parse("news"), None);
    }

    #[test]
    fn a_position_is_the_last_member() {
        let notification = Notification::new(r#"{"jsonrpc":"2.0","method":"m"}"#.into());
        let position = Position {
            epoch: "e1".into(),
            offset: 7,
        };
        let text = notification.positioned(&StreamName::topic("a\"b"), &position);
        assert_eq!(
            text,
            r#"{"jsonrpc":"2.0","method":"m","position":{"stream":"topic:a\"b","epoch":"e1","offset":7}}"#
        );
    }
}
