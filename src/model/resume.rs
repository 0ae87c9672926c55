//! What a model carries for the trainer between `partial_fit` calls (the optimiser's moments and the
//! shuffling generator), without knowing its type: the trainer depends on the model, so the model
//! holds the trainer's state as an opaque value the trainer puts and takes back. It is never saved —
//! a loaded model starts a fresh optimiser — and a cloned model starts its own, because two models
//! sharing moments would each update with the other's history.

use std::any::Any;

/// An opaque slot for the trainer's resumable state.
#[derive(Default)]
pub(crate) struct ResumeState(Option<Box<dyn Any + Send + Sync>>);

impl ResumeState {
    /// Takes the state out if it is a `T`, leaving the slot empty.
    pub(crate) fn take<T: Any>(&mut self) -> Option<T> {
        let state = self.0.take()?;
        state.downcast::<T>().ok().map(|boxed| *boxed)
    }

    /// Stores `state` for the next call.
    pub(crate) fn put<T: Any + Send + Sync>(&mut self, state: T) {
        self.0 = Some(Box::new(state));
    }

    /// Whether training state is kept (an optimiser has run since the model was made or loaded).
    pub(crate) fn is_active(&self) -> bool {
        self.0.is_some()
    }
}

impl Clone for ResumeState {
    fn clone(&self) -> Self {
        ResumeState::default()
    }
}

impl std::fmt::Debug for ResumeState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResumeState").field("active", &self.is_active()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takes_back_what_was_put_and_clones_empty() {
        let mut slot = ResumeState::default();
        assert!(slot.take::<u32>().is_none());
        slot.put(7_u32);
        let cloned = slot.clone();
        assert!(!cloned.is_active());
        assert_eq!(slot.take::<u32>(), Some(7));
        assert!(!slot.is_active());
        slot.put(7_u32);
        assert_eq!(slot.take::<String>(), None, "a value of another type is not handed out");
    }
}
