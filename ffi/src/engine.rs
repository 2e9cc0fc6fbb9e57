//! `octo_engine`: the running shards, and the configuration they start with.

use std::time::Duration;

use ::octo_engine::{Engine, Limits};

use crate::boundary::{arg, call, checked_out, set_last_error, value, write_out, Failure, Outcome};
use crate::status::octo_status;

/// The most shards an engine may run.
pub const OCTO_MAX_SHARDS: u32 = 1024;

/// How an engine starts. Fill it with `octo_engine_config_default`, change what you need,
/// then pass it to `octo_engine_new` (which copies it; the struct stays the caller's).
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct octo_engine_config {
    /// Shard threads (each owns one io_uring ring); 0 = one per available CPU. At most 1024.
    pub shards: u32,
    /// Pin shard threads to CPUs: true (default) pins shard i to `cpus[i % cpus_len]`, or to
    /// the i-th available CPU when `cpus` is NULL; false leaves threads unpinned.
    pub pin_shards: bool,
    /// CPU ids to pin to (read during `octo_engine_new` only); may be NULL.
    pub cpus: *const u32,
    /// Number of entries in `cpus`.
    pub cpus_len: usize,
    /// Submission queue entries per shard ring (default 1024).
    pub ring_entries: u32,
    /// Largest frame a peer may send, in bytes (default 16 MiB); a larger length claim closes
    /// the connection before anything is allocated.
    pub max_frame_size: u32,
    /// Connections each shard accepts per server; more are closed at once (default 16384).
    pub max_connections_per_shard: u32,
    /// Calls answered later (responder kept past the callback) that one connection may have
    /// open; more are answered with status 6, DegradeException (default 4096).
    pub max_in_flight_per_connection: u32,
    /// A server connection idle this long (nothing received, nothing in flight) is closed;
    /// 0 = never (default 180000).
    pub idle_timeout_ms: u32,
    /// A connection with this many unsent output bytes stops reading (default 1 MiB) ...
    pub write_high_water: u32,
    /// ... until its unsent output falls to this many (default 256 KiB).
    pub write_low_water: u32,
}

impl Default for octo_engine_config {
    fn default() -> Self {
        let limits = Limits::default();
        let clamp = |v: usize| u32::try_from(v).unwrap_or(u32::MAX);
        octo_engine_config {
            shards: 0,
            pin_shards: true,
            cpus: std::ptr::null(),
            cpus_len: 0,
            ring_entries: 1024,
            max_frame_size: clamp(limits.max_frame_size),
            max_connections_per_shard: clamp(limits.max_connections_per_shard),
            max_in_flight_per_connection: clamp(limits.max_in_flight_per_connection),
            idle_timeout_ms: limits
                .idle_timeout
                .map_or(0, |d| d.as_millis().min(u32::MAX as u128) as u32),
            write_high_water: clamp(limits.write_high_water),
            write_low_water: clamp(limits.write_low_water),
        }
    }
}

/// Running shard threads on which servers and clients run.
///
/// Threads: the handle may be used from any thread, except from inside an octo callback (those
/// run on the engine's own shard threads).
#[allow(non_camel_case_types)]
pub struct octo_engine {
    pub(crate) engine: Engine,
}

/// Writes the default configuration into `*out`. Any thread.
#[no_mangle]
pub extern "C" fn octo_engine_config_default(config: *mut octo_engine_config) -> octo_status {
    call("octo_engine_config_default", || {
        let config = checked_out(config, "config")?;
        // SAFETY: config is non-NULL and valid for a write per the contract.
        unsafe { write_out(config, octo_engine_config::default()) };
        Ok(())
    })
}

fn limits_of(c: &octo_engine_config) -> Outcome<Limits> {
    const MIN_FRAME: u32 = 64;
    if c.max_frame_size < MIN_FRAME || c.max_frame_size > i32::MAX as u32 {
        return Err(Failure::invalid(format!(
            "max_frame_size {} is outside [{MIN_FRAME}, 2^31 - 1]",
            c.max_frame_size
        )));
    }
    if c.max_connections_per_shard == 0 || c.max_in_flight_per_connection == 0 {
        return Err(Failure::invalid(
            "max_connections_per_shard and max_in_flight_per_connection must be > 0",
        ));
    }
    if c.write_high_water == 0 || c.write_low_water > c.write_high_water {
        return Err(Failure::invalid(
            "write_high_water must be > 0 and >= write_low_water",
        ));
    }
    Ok(Limits {
        max_frame_size: c.max_frame_size as usize,
        max_connections_per_shard: c.max_connections_per_shard as usize,
        max_in_flight_per_connection: c.max_in_flight_per_connection as usize,
        idle_timeout: (c.idle_timeout_ms > 0)
            .then(|| Duration::from_millis(c.idle_timeout_ms.into())),
        write_high_water: c.write_high_water as usize,
        write_low_water: c.write_low_water as usize,
    })
}

/// Starts an engine: its shard threads are running when this returns. `config` may be NULL
/// for the defaults. Ownership: `*out` belongs to the caller; free it with `octo_engine_free`
/// after every server and client made on it. Threads: any thread but a shard thread.
/// INVALID_ARGUMENT for a bad configuration; IO if the kernel refuses (e.g. no io_uring).
#[no_mangle]
pub extern "C" fn octo_engine_new(
    config: *const octo_engine_config,
    out: *mut *mut octo_engine,
) -> octo_status {
    call("octo_engine_new", || {
        let out = checked_out(out, "out")?;
        let config = if config.is_null() {
            octo_engine_config::default()
        } else {
            // SAFETY: a non-NULL config points to a live struct, per the contract.
            *unsafe { arg(config, "config") }?
        };
        if config.shards > OCTO_MAX_SHARDS {
            return Err(Failure::invalid(format!(
                "shards {} exceeds {OCTO_MAX_SHARDS}",
                config.shards
            )));
        }
        if config.ring_entries == 0 || config.ring_entries > 32768 {
            return Err(Failure::invalid(format!(
                "ring_entries {} is outside [1, 32768]",
                config.ring_entries
            )));
        }
        // SAFETY: cpus points to cpus_len readable u32s (or is NULL / empty), per the contract.
        let cpus = unsafe {
            crate::boundary::bytes(
                config.cpus.cast::<u8>(),
                config.cpus_len.saturating_mul(4),
                "cpus",
            )
        }?;
        let cpus: Vec<usize> = cpus
            .chunks_exact(4)
            .map(|c| u32::from_ne_bytes([c[0], c[1], c[2], c[3]]) as usize)
            .collect();
        let limits = limits_of(&config)?;
        let mut builder = Engine::builder()
            .limits(limits)
            .ring_entries(config.ring_entries);
        if config.shards > 0 {
            builder = builder.shards(config.shards as usize);
        }
        if !config.pin_shards {
            builder = builder.cpus(Vec::new());
        } else if !cpus.is_empty() {
            builder = builder.cpus(cpus);
        }
        let engine = builder
            .build()
            .map_err(|e| Failure::new(octo_status::Io, format!("starting the shards: {e}")))?;
        // SAFETY: out is non-NULL and valid for a write per the contract.
        unsafe { write_out(out, Box::into_raw(Box::new(octo_engine { engine }))) };
        Ok(())
    })
}

/// The number of shard threads `engine` runs (0 if `engine` is NULL). Any thread.
#[no_mangle]
pub extern "C" fn octo_engine_shard_count(engine: *const octo_engine) -> u32 {
    // SAFETY: a non-NULL engine is a live handle, per the contract.
    value("octo_engine_shard_count", 0, || {
        unsafe { engine.as_ref() }.map_or(0, |e| e.engine.shard_count() as u32)
    })
}

/// Stops the shard threads and joins them, then frees `engine` (NULL is ignored). Servers and
/// clients still running on it are cut off: free them first. Must not be called from inside an
/// octo callback (it would wait for its own thread): there it does nothing but set the last
/// error. Any other thread.
#[no_mangle]
pub extern "C" fn octo_engine_free(engine: *mut octo_engine) {
    value("octo_engine_free", (), || {
        if engine.is_null() {
            return;
        }
        if crate::boundary::in_callback() {
            set_last_error("octo_engine_free: called inside a callback; the engine was not freed");
            return;
        }
        // SAFETY: engine is a live handle made by octo_engine_new that the caller gives up.
        let engine = unsafe { Box::from_raw(engine) };
        engine.engine.shutdown();
    })
}
