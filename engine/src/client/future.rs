//! The future of one call: resolved by the call's completion on its shard, polled anywhere.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use super::call::{CallError, CallResult};

#[derive(Default)]
struct State {
    result: Option<CallResult>,
    waker: Option<Waker>,
    /// The completion ran (or was dropped): no result will come after `result` is taken.
    finished: bool,
}

/// What a call's future and its completion share.
#[derive(Default)]
pub(crate) struct FutureState(Mutex<State>);

impl FutureState {
    /// Stores the result and wakes the future's task.
    pub(crate) fn resolve(&self, r: CallResult) {
        let waker = {
            let mut s = self.0.lock().unwrap_or_else(|p| p.into_inner());
            s.result = Some(r);
            s.finished = true;
            s.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }
}

/// The answer to a [`Client::call_async`](super::Client::call_async), as a future.
#[must_use = "a call's future does nothing unless awaited (the call is sent regardless)"]
pub struct CallFuture {
    state: Arc<FutureState>,
}

impl std::fmt::Debug for CallFuture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CallFuture")
    }
}

/// A future and the state its call's completion resolves.
pub(crate) fn pair() -> (CallFuture, Arc<FutureState>) {
    let state = Arc::new(FutureState::default());
    (
        CallFuture {
            state: state.clone(),
        },
        state,
    )
}

impl Future for CallFuture {
    type Output = CallResult;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<CallResult> {
        let mut s = self.state.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(r) = s.result.take() {
            return Poll::Ready(r);
        }
        if s.finished {
            return Poll::Ready(Err(CallError::shutdown()));
        }
        match &s.waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => s.waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}
