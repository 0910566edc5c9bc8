//! Change events: what a committed write tells the listeners, and how it reaches them.
//!
//! The engine publishes a [`Change`] once the write is journaled and applied in memory, while it
//! still holds the group's lock, so each subscriber sees the changes of one key in commit order;
//! listeners run later, on their own thread, never inside the write. Publishing
//! never runs listener code: it appends the event's JSON text to each matching subscriber's
//! [`EventQueue`] and, when that queue was empty, calls the queue's `notify` callback once
//! (the Node binding schedules a drain on the JavaScript thread from it). Subscribers are
//! indexed by group, so writes to other groups cost a subscriber nothing, and a store with no
//! subscriber pays one atomic load per write.

use crate::json::push_json_string;
use parking_lot::{Mutex, RwLock};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

/// What happened to an item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    /// The key did not exist (or had expired) before the write: `state:created`.
    Created,
    /// The key existed and got a new value: `state:updated`.
    Updated,
    /// The item was removed: `state:deleted`.
    Deleted,
}

impl EventType {
    fn as_str(self) -> &'static str {
        match self {
            EventType::Created => "state:created",
            EventType::Updated => "state:updated",
            EventType::Deleted => "state:deleted",
        }
    }
}

/// Why an item was removed, when it was not an explicit `delete`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// Its TTL ran out.
    Expired,
    /// Its group was cleared.
    Cleared,
}

impl Reason {
    fn as_str(self) -> &'static str {
        match self {
            Reason::Expired => "expired",
            Reason::Cleared => "cleared",
        }
    }
}

/// One committed change, with the values as JSON text.
#[derive(Debug, Clone, Copy)]
pub struct Change<'a> {
    /// Created, updated or deleted.
    pub event_type: EventType,
    /// The item's group.
    pub group: &'a str,
    /// The item's key.
    pub key: &'a str,
    /// The value before the change (`None` when created).
    pub old_value: Option<&'a str>,
    /// The value after the change (`None` when deleted).
    pub new_value: Option<&'a str>,
    /// Why it was removed, for expiry and clear.
    pub reason: Option<Reason>,
}

impl Change<'_> {
    /// The event object of SPEC "Change events" as JSON text.
    pub fn to_json(&self) -> String {
        let old = self.old_value.unwrap_or("null");
        let new = self.new_value.unwrap_or("null");
        let mut out = String::with_capacity(120 + old.len() + new.len());
        out.push_str("{\"type\":\"state\",\"event_type\":\"");
        out.push_str(self.event_type.as_str());
        out.push_str("\",\"group_id\":");
        push_json_string(&mut out, self.group);
        out.push_str(",\"item_id\":");
        push_json_string(&mut out, self.key);
        out.push_str(",\"old_value\":");
        out.push_str(old);
        out.push_str(",\"new_value\":");
        out.push_str(new);
        if let Some(reason) = self.reason {
            out.push_str(",\"reason\":\"");
            out.push_str(reason.as_str());
            out.push('"');
        }
        out.push('}');
        out
    }
}

/// Which changes a subscriber wants: all, one group's, or one key's.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// Only changes of this group (`None`: every group).
    pub group: Option<String>,
    /// Only changes of this key (within `group` if given).
    pub key: Option<String>,
}

/// Called when a queue goes from empty to non-empty; returns `false` when the receiver is gone
/// (its thread exited), which ends the subscription.
pub type Notify = Box<dyn Fn() -> bool + Send + Sync>;

/// The events one subscriber has not taken yet, as the comma-separated body of a JSON array.
pub struct EventQueue {
    pending: Mutex<String>,
    notify: Notify,
    gone: AtomicBool,
}

impl std::fmt::Debug for EventQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventQueue").finish_non_exhaustive()
    }
}

impl EventQueue {
    fn push(&self, event_json: &str) {
        if self.gone.load(Ordering::Relaxed) {
            return;
        }
        let was_empty = {
            let mut pending = self.pending.lock();
            let was_empty = pending.is_empty();
            if !was_empty {
                pending.push(',');
            }
            pending.push_str(event_json);
            was_empty
        };
        if was_empty && !(self.notify)() {
            self.gone.store(true, Ordering::Relaxed);
        }
    }

    /// Takes every pending event as the text of one JSON array (`[]` when none).
    pub fn drain(&self) -> String {
        let body = std::mem::take(&mut *self.pending.lock());
        let mut out = String::with_capacity(body.len() + 2);
        out.push('[');
        out.push_str(&body);
        out.push(']');
        out
    }
}

struct Subscription {
    id: u64,
    key: Option<String>,
    queue: Arc<EventQueue>,
    /// Events at or before this position of an ordered source were committed before the
    /// subscription (see [`EventBus::publish_at`]); 0 for a source without positions.
    since: u128,
}

#[derive(Default)]
struct Registry {
    by_group: HashMap<String, Vec<Subscription>>,
    any_group: Vec<Subscription>,
}

/// What publishes change events: an engine, or a Redis store (whose events come from every
/// process on its prefix). A binding's subscription holds its publisher, so that the bus
/// outlives the subscription whatever kind of store it belongs to.
pub trait Publisher: Send + Sync {
    /// The bus subscribers join.
    fn events(&self) -> &EventBus;
}

/// The subscribers of one engine.
#[derive(Default)]
pub struct EventBus {
    count: AtomicUsize,
    next_id: AtomicU64,
    registry: RwLock<Registry>,
}

impl std::fmt::Debug for EventBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventBus")
            .field("subscribers", &self.count.load(Ordering::Relaxed))
            .finish()
    }
}

impl EventBus {
    /// Registers a subscriber; returns its id (for [`EventBus::unsubscribe`]) and its queue.
    pub fn subscribe(&self, filter: Filter, notify: Notify) -> (u64, Arc<EventQueue>) {
        self.subscribe_since(filter, notify, 0)
    }

    /// [`EventBus::subscribe`] for a source whose events have positions (the Redis store's
    /// stream): events published at or before `since` are not this subscriber's, since they
    /// were committed before it subscribed.
    pub fn subscribe_since(
        &self,
        filter: Filter,
        notify: Notify,
        since: u128,
    ) -> (u64, Arc<EventQueue>) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        let queue = Arc::new(EventQueue {
            pending: Mutex::new(String::new()),
            notify,
            gone: AtomicBool::new(false),
        });
        let subscription = Subscription {
            id,
            key: filter.key,
            queue: queue.clone(),
            since,
        };
        let mut registry = self.registry.write();
        match filter.group {
            Some(group) => registry
                .by_group
                .entry(group)
                .or_default()
                .push(subscription),
            None => registry.any_group.push(subscription),
        }
        self.count.fetch_add(1, Ordering::Release);
        (id, queue)
    }

    /// Removes a subscriber; unknown ids are ignored.
    pub fn unsubscribe(&self, id: u64) {
        let mut registry = self.registry.write();
        let mut removed = 0;
        registry.any_group.retain(|s| {
            (s.id != id) || {
                removed += 1;
                false
            }
        });
        registry.by_group.retain(|_, subs| {
            subs.retain(|s| {
                (s.id != id) || {
                    removed += 1;
                    false
                }
            });
            !subs.is_empty()
        });
        self.count.fetch_sub(removed, Ordering::Release);
    }

    /// Removes every subscriber (a closed store tells no one anything).
    pub fn unsubscribe_all(&self) {
        let mut registry = self.registry.write();
        let removed =
            registry.any_group.len() + registry.by_group.values().map(Vec::len).sum::<usize>();
        registry.any_group.clear();
        registry.by_group.clear();
        self.count.fetch_sub(removed, Ordering::Release);
    }

    /// Whether anyone listens at all (one atomic load).
    pub fn has_subscribers(&self) -> bool {
        self.count.load(Ordering::Acquire) > 0
    }

    /// Queues `change` for every matching subscriber. The JSON text is built once, and only if
    /// some subscriber matches.
    pub fn publish(&self, change: &Change<'_>) {
        self.publish_at(change, u128::MAX);
    }

    /// [`EventBus::publish`] of the change at `position` of an ordered source: subscribers
    /// that subscribed at or after it do not get it.
    pub fn publish_at(&self, change: &Change<'_>, position: u128) {
        if !self.has_subscribers() {
            return;
        }
        let registry = self.registry.read();
        let mut json: Option<String> = None;
        let targeted = registry.by_group.get(change.group);
        let subscribers = registry
            .any_group
            .iter()
            .chain(targeted.into_iter().flatten());
        for subscription in subscribers {
            if position <= subscription.since
                || subscription
                    .key
                    .as_deref()
                    .is_some_and(|key| key != change.key)
            {
                continue;
            }
            let text = json.get_or_insert_with(|| change.to_json());
            subscription.queue.push(text);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    fn change<'a>(group: &'a str, key: &'a str) -> Change<'a> {
        Change {
            event_type: EventType::Updated,
            group,
            key,
            old_value: Some("1"),
            new_value: Some("2"),
            reason: None,
        }
    }

    #[test]
    fn events_are_json_in_the_shape_of_the_spec() {
        let mut c = change("g\"", "k");
        c.event_type = EventType::Deleted;
        c.new_value = None;
        c.reason = Some(Reason::Cleared);
        let value: serde_json::Value = serde_json::from_str(&c.to_json()).unwrap();
        assert_eq!(
            value,
            serde_json::json!({"type":"state","event_type":"state:deleted","group_id":"g\"",
                "item_id":"k","old_value":1,"new_value":null,"reason":"cleared"})
        );
    }

    #[test]
    fn filters_pick_group_and_key_and_notify_fires_once_per_batch() {
        let bus = EventBus::default();
        let notified = Arc::new(AtomicUsize::new(0));
        let counter = notified.clone();
        let notify: Notify = Box::new(move || {
            counter.fetch_add(1, Ordering::SeqCst);
            true
        });
        let (_, queue) = bus.subscribe(
            Filter {
                group: Some("g".into()),
                key: Some("k".into()),
            },
            notify,
        );
        bus.publish(&change("g", "k"));
        bus.publish(&change("g", "other"));
        bus.publish(&change("other", "k"));
        bus.publish(&change("g", "k"));
        assert_eq!(notified.load(Ordering::SeqCst), 1);
        let events: Vec<serde_json::Value> = serde_json::from_str(&queue.drain()).unwrap();
        assert_eq!(events.len(), 2);
        assert_eq!(queue.drain(), "[]");
    }

    #[test]
    fn unsubscribed_and_gone_subscribers_receive_nothing() {
        let bus = EventBus::default();
        let (id, queue) = bus.subscribe(Filter::default(), Box::new(|| true));
        bus.unsubscribe(id);
        assert!(!bus.has_subscribers());
        bus.publish(&change("g", "k"));
        assert_eq!(queue.drain(), "[]");

        let (_, gone) = bus.subscribe(Filter::default(), Box::new(|| false));
        bus.publish(&change("g", "k"));
        let _ = gone.drain();
        bus.publish(&change("g", "k"));
        assert_eq!(gone.drain(), "[]");
    }
}
