//! The shard-local executor the client's async calls run on (runtime::spawn_local): tasks run on
//! their shard, are polled again when woken from any thread, and see their shard while polled.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::{mpsc, Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use octo_engine::runtime::{
    local_task_count, spawn_local, with_current_shard, Runtime, RuntimeConfig,
};

const WAIT: Duration = Duration::from_secs(20);

fn runtime() -> Runtime {
    Runtime::start(RuntimeConfig {
        shards: 1,
        cpus: Some(vec![]),
        ..RuntimeConfig::default()
    })
    .unwrap()
}

/// A future resolved by whoever holds the other end, from any thread.
#[derive(Clone, Default)]
struct Gate(Arc<Mutex<(bool, Option<Waker>)>>);

impl Gate {
    fn open(&self) {
        let w = {
            let mut g = self.0.lock().unwrap();
            g.0 = true;
            g.1.take()
        };
        if let Some(w) = w {
            w.wake();
        }
    }
}

impl Future for Gate {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut g = self.0.lock().unwrap();
        if g.0 {
            Poll::Ready(())
        } else {
            g.1 = Some(cx.waker().clone());
            Poll::Pending
        }
    }
}

#[test]
fn a_spawned_task_runs_to_completion_on_its_shard_and_is_freed() {
    let rt = runtime();
    let (tx, rx) = mpsc::channel();
    rt.shard(0)
        .post(move |shard| {
            let shard_thread = std::thread::current().id();
            spawn_local(shard, async move {
                let _ = tx.send((std::thread::current().id() == shard_thread, ()));
            });
        })
        .unwrap();
    let (same, ()) = rx.recv_timeout(WAIT).unwrap();
    assert!(same);
    let (tx, rx) = mpsc::channel();
    rt.shard(0)
        .post(move |_| {
            let _ = tx.send(local_task_count());
        })
        .unwrap();
    assert_eq!(rx.recv_timeout(WAIT).unwrap(), 0);
}

#[test]
fn a_task_woken_from_a_foreign_thread_is_polled_again_on_its_shard() {
    let rt = runtime();
    let gate = Gate::default();
    let (tx, rx) = mpsc::channel();
    let g = gate.clone();
    rt.shard(0)
        .post(move |shard| {
            spawn_local(shard, async move {
                g.await;
                let _ = tx.send(with_current_shard(|s| s.id()));
            });
        })
        .unwrap();
    assert!(
        rx.recv_timeout(Duration::from_millis(100)).is_err(),
        "waits for the gate"
    );
    gate.open();
    assert_eq!(
        rx.recv_timeout(WAIT).unwrap(),
        Some(0),
        "polled on shard 0, shard lent"
    );
}

#[test]
fn tasks_woken_on_their_own_shard_all_run() {
    let rt = runtime();
    let (tx, rx) = mpsc::channel();
    rt.shard(0)
        .post(move |shard| {
            let gates: Rc<RefCell<Vec<Gate>>> = Rc::default();
            for i in 0..500 {
                let gate = Gate::default();
                gates.borrow_mut().push(gate.clone());
                let tx = tx.clone();
                spawn_local(shard, async move {
                    gate.await;
                    let _ = tx.send(i);
                });
            }
            // One task opens every gate from the shard itself.
            spawn_local(shard, async move {
                for g in gates.borrow().iter() {
                    g.open();
                }
            });
        })
        .unwrap();
    let mut got: Vec<i32> = (0..500).map(|_| rx.recv_timeout(WAIT).unwrap()).collect();
    got.sort();
    assert_eq!(got, (0..500).collect::<Vec<_>>());
}

#[test]
fn with_current_shard_is_none_outside_a_task_poll() {
    let rt = runtime();
    let (tx, rx) = mpsc::channel();
    rt.shard(0)
        .post(move |_| {
            let _ = tx.send(with_current_shard(|_| ()).is_none());
        })
        .unwrap();
    assert!(rx.recv_timeout(WAIT).unwrap());
    assert!(with_current_shard(|_| ()).is_none());
}
