//! Session slots of a worker, with the slot of a new session chosen by the
//! signaling side: it registers the session's sockets under tokens naming the
//! slot before the worker has seen the session (see `control`).

/// The worker's side: sessions by slot.
#[derive(Debug)]
pub(crate) struct Slots<T> {
    entries: Vec<Option<T>>,
    len: usize,
}

impl<T> Default for Slots<T> {
    fn default() -> Self {
        Slots {
            entries: Vec::new(),
            len: 0,
        }
    }
}

impl<T> Slots<T> {
    pub(crate) fn get(&self, key: usize) -> Option<&T> {
        self.entries.get(key)?.as_ref()
    }

    pub(crate) fn get_mut(&mut self, key: usize) -> Option<&mut T> {
        self.entries.get_mut(key)?.as_mut()
    }

    /// Puts `value` at `key`; hands back what was there (nothing, when the
    /// keys come from one [`SlotKeys`]).
    pub(crate) fn insert(&mut self, key: usize, value: T) -> Option<T> {
        if key >= self.entries.len() {
            self.entries.resize_with(key + 1, || None);
        }
        let old = self.entries[key].replace(value);
        if old.is_none() {
            self.len += 1;
        }
        old
    }

    pub(crate) fn remove(&mut self, key: usize) -> Option<T> {
        let old = self.entries.get_mut(key)?.take();
        if old.is_some() {
            self.len -= 1;
        }
        old
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn iter_mut(&mut self) -> impl Iterator<Item = &mut T> {
        self.entries.iter_mut().flatten()
    }
}

/// The signaling side's record of which slots of one worker are taken. A key
/// is given back when the session's `Remove` has been queued: the worker
/// empties the slot before it reads the `Add` that reuses it.
#[derive(Debug, Default)]
pub(crate) struct SlotKeys {
    free: Vec<usize>,
    next: usize,
}

impl SlotKeys {
    /// Freed keys are reused before a new one is made, which keeps a worker's
    /// slot table as small as its peak number of sessions.
    pub(crate) fn take(&mut self) -> usize {
        self.free.pop().unwrap_or_else(|| {
            self.next += 1;
            self.next - 1
        })
    }

    pub(crate) fn give_back(&mut self, key: usize) {
        self.free.push(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_reused_after_being_given_back() {
        let mut keys = SlotKeys::default();
        assert_eq!((keys.take(), keys.take(), keys.take()), (0, 1, 2));
        keys.give_back(1);
        assert_eq!(keys.take(), 1);
        assert_eq!(keys.take(), 3);
    }

    #[test]
    fn slots_count_what_they_hold() {
        let mut slots = Slots::default();
        assert!(slots.insert(3, 'a').is_none());
        assert!(slots.insert(0, 'b').is_none());
        assert_eq!(slots.len(), 2);
        assert_eq!(slots.get(3), Some(&'a'));
        assert_eq!(slots.get(1), None);
        assert_eq!(slots.remove(3), Some('a'));
        assert_eq!(slots.remove(3), None);
        assert_eq!(slots.remove(99), None);
        assert_eq!(slots.len(), 1);
        assert_eq!(slots.iter_mut().count(), 1);
    }
}
