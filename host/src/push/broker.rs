//! The broker between what plugins and built-in methods ask for and the
//! clients: every notification is appended to its stream (which gives it its
//! position and keeps it for clients that resume) and delivered from there;
//! subscriptions and metadata of session clients are saved with their session.

use std::sync::Arc;

use super::clients::{ClientError, Clients};
use super::sessions::Sessions;
use crate::store::{
    MAX_TOPIC_BYTES, MetadataChange, Notification, Position, Presence, StoreError, StreamLog,
    StreamName,
};
use crate::webhook::Webhooks;

/// Why a push operation failed; plugins get the message as an error value.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    /// Something about the client or topic.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Notifications, subscriptions and client metadata, as plugins and the
/// built-in methods change them.
pub struct Broker {
    clients: Arc<Clients>,
    streams: Arc<dyn StreamLog>,
    sessions: Arc<Sessions>,
    presence: Option<Arc<dyn Presence>>,
    webhooks: Arc<Webhooks>,
}

impl Broker {
    /// A broker delivering to `clients` through `streams`, and to
    /// `webhooks` subscribers; in a cluster, `presence` lists every node's
    /// clients.
    pub fn new(
        clients: Arc<Clients>,
        streams: Arc<dyn StreamLog>,
        sessions: Arc<Sessions>,
        presence: Option<Arc<dyn Presence>>,
        webhooks: Arc<Webhooks>,
    ) -> Self {
        Self {
            clients,
            streams,
            sessions,
            presence,
            webhooks,
        }
    }

    /// The webhook subscriptions.
    pub fn webhooks(&self) -> &Arc<Webhooks> {
        &self.webhooks
    }

    /// The clients of this node.
    pub fn clients(&self) -> &Clients {
        &self.clients
    }

    /// The ids of the clients: this node's, and in a cluster every other
    /// node's (none while the cluster's list cannot be read).
    pub async fn client_ids(&self) -> Vec<String> {
        let mut ids = self.clients.ids();
        if let Some(presence) = &self.presence {
            ids.extend(or_none(
                "listing the cluster's clients",
                presence.clients().await,
            ));
        }
        ids
    }

    /// The JSON text at metadata `key` of client `client_id`, of this node
    /// or, in a cluster, of another node (as that node last published it).
    pub async fn metadata(&self, client_id: &str, key: &str) -> Option<String> {
        match &self.presence {
            Some(presence) if !self.clients.contains(client_id) => {
                let found = presence.metadata(client_id).await.map(Vec::from_iter);
                or_none("reading another node's client", found)
                    .pop()?
                    .remove(key)
            }
            _ => self.clients.metadata(client_id, key),
        }
    }

    /// The subscribers of `topic`: this node's and, in a cluster, every
    /// other node's.
    pub async fn subscribers(&self, topic: &str) -> Vec<String> {
        let mut ids = self.clients.subscribers(topic);
        if let Some(presence) = &self.presence {
            let found = presence.subscribers(topic).await;
            ids.extend(or_none("listing the cluster's subscribers", found));
        }
        ids
    }

    /// Publish this node's clients to the cluster's list, if there is one,
    /// and make the metadata changes other nodes asked for.
    pub async fn refresh_presence(&self) -> Result<(), StoreError> {
        let Some(presence) = &self.presence else {
            return Ok(());
        };
        for change in presence.publish(self.clients.roster()).await? {
            let client = change.client_id.clone();
            if let Err(error) = self.set_metadata(&client, change.key, change.value).await {
                tracing::warn!(
                    client,
                    "a metadata change from another node failed: {error}"
                );
            }
        }
        Ok(())
    }

    /// Send notification `text` to every client but those in `exclude`,
    /// and queue it for the webhooks subscribed to broadcasts; how many
    /// connected clients of this node it was queued for.
    pub async fn broadcast(&self, text: String, exclude: Vec<String>) -> Result<u32, PushError> {
        let notification = Notification {
            text: text.into(),
            exclude: exclude.into(),
        };
        let body = Arc::clone(&notification.text);
        let appended = self
            .streams
            .append(&StreamName::broadcast(), notification)
            .await?;
        self.webhooks.enqueue(None, &body).await?;
        Ok(appended.delivered)
    }

    /// Send notification `text` to the subscribers of `topic`, webhooks
    /// included; how many connected clients of this node it was queued for.
    pub async fn publish(&self, topic: &str, text: String) -> Result<u32, PushError> {
        check_topic(topic)?;
        let notification = Notification::new(text);
        let body = Arc::clone(&notification.text);
        let appended = self
            .streams
            .append(&StreamName::topic(topic), notification)
            .await?;
        self.webhooks.enqueue(Some(topic), &body).await?;
        Ok(appended.delivered)
    }

    /// Send notification `text` to client `client_id`. A session client
    /// gets it now or, if it is away, when it resumes. In a cluster, a
    /// client this node does not know may be another node's: the
    /// notification goes through its stream, which reaches every node.
    pub async fn send(&self, client_id: &str, text: String) -> Result<(), PushError> {
        let local = self.clients.is_connected(client_id);
        if !self.clients.is_session(client_id) && (local || !self.streams.reaches_every_node()) {
            return Ok(self.clients.send(client_id, text.into())?);
        }
        let stream = StreamName::client(client_id);
        self.streams
            .append(&stream, Notification::new(text))
            .await?;
        Ok(())
    }

    /// Subscribe client `client_id` to `topic`. For a session client, the
    /// topic's stream position the subscription starts at.
    pub async fn subscribe(
        &self,
        client_id: &str,
        topic: &str,
    ) -> Result<Option<Position>, PushError> {
        let added = self.clients.subscribe(client_id, topic)?;
        if !self.clients.is_session(client_id) {
            return Ok(None);
        }
        let stream = StreamName::topic(topic);
        let position = self.streams.position(&stream).await?;
        if added {
            self.sessions
                .follow(client_id, &stream, position.clone())
                .await?;
        }
        Ok(Some(position))
    }

    /// Unsubscribe client `client_id` from `topic`; true if it was
    /// subscribed.
    pub async fn unsubscribe(&self, client_id: &str, topic: &str) -> Result<bool, PushError> {
        let removed = self.clients.unsubscribe(client_id, topic);
        if removed && self.clients.is_session(client_id) {
            self.sessions
                .unfollow(client_id, &StreamName::topic(topic))
                .await?;
        }
        Ok(removed)
    }

    /// Set metadata `key` of client `client_id` to JSON text `value`. In a
    /// cluster, a client of another node gets the change from its node,
    /// when that node next publishes its clients (within a second).
    pub async fn set_metadata(
        &self,
        client_id: &str,
        key: String,
        value: String,
    ) -> Result<(), PushError> {
        if let Some(presence) = &self.presence
            && !self.clients.contains(client_id)
        {
            let change = MetadataChange {
                client_id: client_id.to_owned(),
                key,
                value,
            };
            return match presence.change_metadata(change).await? {
                true => Ok(()),
                false => Err(ClientError::UnknownClient(client_id.to_owned()).into()),
            };
        }
        self.clients.set_metadata(client_id, key, value)?;
        if self.clients.is_session(client_id) {
            self.sessions.save_metadata(client_id).await?;
        }
        Ok(())
    }
}

/// What another node's list holds, or nothing (logged as `what` failing)
/// when Redis cannot be read.
fn or_none<T>(what: &str, found: Result<Vec<T>, StoreError>) -> Vec<T> {
    found.unwrap_or_else(|error| {
        tracing::warn!("{what} failed: {error}");
        Vec::new()
    })
}

/// Topic names are 1 to [`MAX_TOPIC_BYTES`] bytes.
fn check_topic(topic: &str) -> Result<(), ClientError> {
    if topic.is_empty() || topic.len() > MAX_TOPIC_BYTES {
        return Err(ClientError::BadTopic);
    }
    Ok(())
}
