//! The run's injectors wherever they run — in this process, or in another
//! behind its admin API (a container) — behind one interface for the fault
//! timeline, the preflight and the observers, with every time on the
//! stack's clock.

use std::time::Instant;

use fault_injectors::{
    AdminClient, AdminError, ArrivalPage, BucketPage, Clock, Counters, Fault, Injector,
};

/// One injector of the run.
pub enum InjectorHandle {
    /// In this process.
    Local(Injector),
    /// In another process, driven through its admin API.
    Remote(RemoteInjector),
}

/// An injector in another process.
pub struct RemoteInjector {
    name: String,
    url: String,
    admin: AdminClient,
    /// Added to the injector's clock readings to put them on the stack's.
    offset_s: f64,
}

impl RemoteInjector {
    /// Connects to injector `name` behind `admin`; `url` is where the SUT
    /// reaches it. Reads its clock once to learn how far it is from
    /// `clock` (to within half a loopback round trip).
    pub async fn connect(
        name: &str,
        url: String,
        admin: AdminClient,
        clock: Clock,
    ) -> Result<Self, AdminError> {
        let before = Instant::now();
        let remote_now = admin.now_s(name).await?;
        let after = Instant::now();
        let local_now = clock.since_origin(before + (after - before) / 2);
        Ok(Self {
            name: name.to_string(),
            url,
            offset_s: local_now.as_secs_f64() - remote_now,
            admin,
        })
    }
}

impl InjectorHandle {
    /// Injector name (the downstream it stands for).
    pub fn name(&self) -> &str {
        match self {
            Self::Local(i) => i.name(),
            Self::Remote(r) => &r.name,
        }
    }

    /// Where the SUT reaches it.
    pub fn url(&self) -> String {
        match self {
            Self::Local(i) => i.url(),
            Self::Remote(r) => r.url.clone(),
        }
    }

    /// Adds a fault (or replaces the one with its id).
    pub async fn inject(&self, fault: Fault) -> Result<String, String> {
        match self {
            Self::Local(i) => i.inject(fault).map_err(|e| e.to_string()),
            Self::Remote(r) => r
                .admin
                .inject(&r.name, &fault)
                .await
                .map_err(|e| e.to_string()),
        }
    }

    /// Clears fault `id`; false when there was none or it could not be
    /// cleared.
    pub async fn clear_fault(&self, id: &str) -> bool {
        match self {
            Self::Local(i) => i.clear_fault(id),
            Self::Remote(r) => match r.admin.clear_fault(&r.name, id).await {
                Ok(cleared) => cleared,
                Err(e) => {
                    tracing::error!("cannot clear fault {id} of {}: {e}", r.name);
                    false
                }
            },
        }
    }

    /// Totals so far, arrival instants on the stack's clock origin (as a
    /// local injector's are). An unreadable remote gives empty totals, logged.
    pub async fn counters(&self) -> Counters {
        self.read_counters().await.unwrap_or_else(|e| {
            tracing::error!("cannot read the counters of {}: {e}", self.name());
            Counters::default()
        })
    }

    /// Totals so far, or why a remote injector's admin API could not give
    /// them (the message names the admin URL). A local injector always
    /// answers.
    pub async fn read_counters(&self) -> Result<Counters, String> {
        match self {
            Self::Local(i) => Ok(i.counters()),
            Self::Remote(r) => match r.admin.counters(&r.name).await {
                Ok(mut c) => {
                    for t in [&mut c.first_arrival_s, &mut c.last_arrival_s] {
                        *t = t.map(|s| s + r.offset_s);
                    }
                    Ok(c)
                }
                Err(e) => Err(e.to_string()),
            },
        }
    }

    /// Every arrival bucket kept, starts on the stack's clock origin. An
    /// unreadable remote gives no buckets, logged.
    pub async fn buckets(&self) -> Option<BucketPage> {
        match self {
            Self::Local(i) => Some(i.buckets_since(0)),
            Self::Remote(r) => match r.admin.buckets_since(&r.name, 0).await {
                Ok(mut page) => {
                    for b in &mut page.buckets {
                        b.start_s += r.offset_s;
                    }
                    Some(page)
                }
                Err(e) => {
                    tracing::error!("cannot read the arrivals of {}: {e}", r.name);
                    None
                }
            },
        }
    }

    /// Arrival records from `cursor` on (the injector forgets those before
    /// it), times on the injector's own clock: add [`Self::offset_us`]. An
    /// unreadable remote gives None, logged.
    pub async fn arrivals_since(&self, cursor: u64) -> Option<ArrivalPage> {
        match self {
            Self::Local(i) => Some(i.arrivals_since(cursor)),
            Self::Remote(r) => match r.admin.arrivals_since(&r.name, cursor).await {
                Ok(page) => Some(page),
                Err(e) => {
                    tracing::error!("cannot read the arrival records of {}: {e}", r.name);
                    None
                }
            },
        }
    }

    /// What to add to the injector's clock readings, in µs, to put them on
    /// the stack's clock.
    pub fn offset_us(&self) -> i64 {
        match self {
            Self::Local(_) => 0,
            Self::Remote(r) => (r.offset_s * 1e6).round() as i64,
        }
    }

    /// Stops a local injector; a remote one stops with its container.
    pub async fn shutdown(&self) {
        if let Self::Local(i) = self {
            i.shutdown().await;
        }
    }
}
