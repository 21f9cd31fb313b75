//! The write transaction: one method per transition, each keeping the tables and their indexes
//! in step, every status change applied through the lifecycle tables.

use super::*;

/// A write transaction, with one method per transition.
pub struct Tx<'a> {
    txn: &'a redb::WriteTransaction,
    /// The counters whose next id this transaction has checked is free.
    checked: Vec<&'static str>,
}

impl<'a> Tx<'a> {
    pub(super) fn new(txn: &'a redb::WriteTransaction) -> Tx<'a> {
        Tx {
            txn,
            checked: Vec::new(),
        }
    }

    /// The next id of `counter`, for a new record of `table`: an id already taken there means
    /// the counter was lost or went back, and is damage, never an overwrite. Checked once per
    /// transaction and counter, against the table's newest id: the ids handed out after that
    /// are all past it.
    fn next_id(&mut self, counter: &'static str, table: TableDefinition<u64, &str>) -> Result<u64> {
        let mut meta = self.txn.open_table(META)?;
        let next = meta.get(counter)?.map(|v| v.value()).unwrap_or(1);
        if !self.checked.contains(&counter) {
            let newest = self
                .txn
                .open_table(table)?
                .last()?
                .map(|(id, _)| id.value());
            if newest.is_some_and(|newest| newest >= next) {
                return Err(StoreError::Missing(format!(
                    "the counter `{counter}` is at {next}, which is taken"
                )));
            }
            self.checked.push(counter);
        }
        meta.insert(counter, next + 1)?;
        Ok(next)
    }

    /// Appends an event to the log.
    fn append(&mut self, run: Option<u64>, task: Option<u64>, event: &Event) -> Result<()> {
        // Logged as the store's, wherever the transaction's code lives.
        tracing::debug!(
            target: "engine::store",
            run,
            task,
            detail = %event.detail(),
            "{}",
            event.kind()
        );
        let seq = self.next_id("next_event", EVENTS)?;
        let record = EventRecord {
            seq,
            time_ms: now_ms(),
            run,
            task,
            kind: event.kind().as_str().to_string(),
            detail: event.detail(),
        };
        self.txn
            .open_table(EVENTS)?
            .insert(seq, encode("events", &record)?.as_str())?;
        Ok(())
    }

    /// Appends an event that changes no status (a webhook's delivery, a garbage collection).
    pub fn note(&mut self, run: Option<u64>, event: &Event) -> Result<()> {
        if event.kind().entity() != Entity::Neither {
            return Err(StoreError::NotANote(event.kind()));
        }
        self.append(run, None, event)
    }

    /// Applies `event` to the stored run through the run lifecycle table, lets `update` set the
    /// run's other fields (never its status), and writes it with the event. Returns the run as
    /// written.
    pub fn run_event(
        &mut self,
        id: u64,
        event: &Event,
        update: impl FnOnce(&mut RunRecord),
    ) -> Result<RunRecord> {
        let mut run = self.run(id)?;
        run.apply(event)?;
        let to = run.status;
        update(&mut run);
        if run.status != to {
            return Err(mismatch("run", id, event.kind(), to, run.status));
        }
        self.put_run(&run)?;
        self.append(Some(id), None, event)?;
        Ok(run)
    }

    /// Writes `task` as `event` left it, with the event: refused unless the task lifecycle takes
    /// the stored task's status to `task.status` on this event.
    pub fn task_event(&mut self, task: &TaskRecord, event: &Event) -> Result<()> {
        let stored: TaskStatus = self
            .stored_status(TASKS, "tasks", task.id)?
            .ok_or(StoreError::NoTask(task.id))?;
        let to = lifecycle::task::apply(task.id, stored, event.kind())?;
        if to != task.status {
            return Err(mismatch("task", task.id, event.kind(), to, task.status));
        }
        self.put_task(task)?;
        self.append(Some(task.run), Some(task.id), event)
    }

    /// Writes a task whose status is unchanged (for tests that set up other fields).
    #[cfg(test)]
    pub fn put_task_same_status(&mut self, task: &TaskRecord) -> Result<()> {
        let stored: TaskStatus = self
            .stored_status(TASKS, "tasks", task.id)?
            .ok_or(StoreError::NoTask(task.id))?;
        assert_eq!(
            stored, task.status,
            "a test changed a status without an event"
        );
        self.put_task(task)
    }

    /// The status of a stored run or task, read without decoding the rest of its record.
    fn stored_status<S: DeserializeOwned>(
        &mut self,
        def: TableDefinition<u64, &str>,
        name: &'static str,
        id: u64,
    ) -> Result<Option<S>> {
        #[derive(serde::Deserialize)]
        struct Status<S> {
            status: S,
        }
        let table = self.txn.open_table(def)?;
        let found = table.get(id)?;
        found
            .map(|v| decode::<Status<S>>(name, v.value()).map(|s| s.status))
            .transpose()
    }

    /// Creates a run; its id is assigned here.
    pub fn create_run(&mut self, mut run: RunRecord) -> Result<RunRecord> {
        run.id = self.next_id("next_run", RUNS)?;
        if run.status != lifecycle::run::INITIAL {
            let (initial, written) = (lifecycle::run::INITIAL, run.status);
            return Err(mismatch(
                "run",
                run.id,
                EventKind::RunCreated,
                initial,
                written,
            ));
        }
        self.put_run(&run)?;
        let created = Event::RunCreated {
            pipeline: run.pipeline.clone(),
            trigger: run.trigger.clone(),
        };
        self.append(Some(run.id), None, &created)?;
        Ok(run)
    }

    fn put_run(&mut self, run: &RunRecord) -> Result<()> {
        self.txn
            .open_table(RUNS)?
            .insert(run.id, encode("runs", run)?.as_str())?;
        index_run(self.txn, run)
    }

    pub fn run(&mut self, id: u64) -> Result<RunRecord> {
        let table = self.txn.open_table(RUNS)?;
        let value = table.get(id)?.ok_or(StoreError::NoRun(id))?;
        decode("runs", value.value())
    }

    /// The runs not finished (inside this transaction), for checking overlap atomically.
    pub fn live_runs(&mut self) -> Result<Vec<RunRecord>> {
        live_runs_in(
            &self.txn.open_table(LIVE_RUNS)?,
            &self.txn.open_table(RUNS)?,
        )
    }

    /// Creates a task of `task.run`, in the lifecycle's first status; its id is assigned here.
    /// Its run's `run.planned` event stands for the creation of its tasks.
    pub fn create_task(&mut self, mut task: TaskRecord) -> Result<TaskRecord> {
        task.id = self.next_id("next_task", TASKS)?;
        if task.status != lifecycle::task::INITIAL {
            let (initial, written) = (lifecycle::task::INITIAL, task.status);
            return Err(mismatch(
                "task",
                task.id,
                EventKind::RunPlanned,
                initial,
                written,
            ));
        }
        self.put_task(&task)?;
        self.txn
            .open_table(RUN_TASKS)?
            .insert((task.run, task.id), ())?;
        Ok(task)
    }

    fn put_task(&mut self, task: &TaskRecord) -> Result<()> {
        self.txn
            .open_table(TASKS)?
            .insert(task.id, encode("tasks", task)?.as_str())?;
        Ok(())
    }

    pub fn task(&mut self, id: u64) -> Result<TaskRecord> {
        let table = self.txn.open_table(TASKS)?;
        let value = table.get(id)?.ok_or(StoreError::NoTask(id))?;
        decode("tasks", value.value())
    }

    pub fn put_attempt(&mut self, attempt: &AttemptRecord) -> Result<()> {
        self.txn.open_table(ATTEMPTS)?.insert(
            (attempt.task, attempt.number),
            encode("attempts", attempt)?.as_str(),
        )?;
        Ok(())
    }

    pub fn put_delivery(&mut self, key: (u64, u32), delivery: &DeliveryRecord) -> Result<()> {
        self.txn
            .open_table(WEBHOOKS)?
            .insert(key, encode("webhooks", delivery)?.as_str())?;
        Ok(())
    }

    pub fn remove_delivery(&mut self, key: (u64, u32)) -> Result<()> {
        self.txn.open_table(WEBHOOKS)?.remove(key)?;
        Ok(())
    }

    pub fn put_item(&mut self, path: &str, item: &ItemRecord) -> Result<()> {
        self.txn
            .open_table(ITEMS)?
            .insert(path, encode("items", item)?.as_str())?;
        Ok(())
    }

    pub fn put_product(&mut self, product: &ProductRecord) -> Result<()> {
        let path = product.path.to_string_lossy();
        self.txn
            .open_table(PRODUCTS)?
            .insert(path.as_ref(), encode("products", product)?.as_str())?;
        Ok(())
    }

    pub fn remove_product(&mut self, path: &str) -> Result<()> {
        self.txn.open_table(PRODUCTS)?.remove(path)?;
        Ok(())
    }

    /// Records a completed task as the cached result for its key and the latest of its step and
    /// group; a failure with the key is over.
    pub fn complete(&mut self, pipeline: &str, task: &TaskRecord) -> Result<()> {
        self.txn
            .open_table(CACHE)?
            .insert(task.key.as_str(), task.id)?;
        self.txn.open_table(FAILED)?.remove(task.key.as_str())?;
        let latest = latest_key(pipeline, &task.step, task.group.as_deref());
        self.txn
            .open_table(LATEST)?
            .insert(latest.as_str(), task.id)?;
        Ok(())
    }

    /// Records that `task` failed after its retries: triggers hold its key for a retry by hand.
    pub fn failed_for_good(&mut self, task: &TaskRecord) -> Result<()> {
        self.txn
            .open_table(FAILED)?
            .insert(task.key.as_str(), task.id)?;
        Ok(())
    }

    /// Deletes a task with its attempts and its place in its run.
    pub fn delete_task(&mut self, task: &TaskRecord) -> Result<()> {
        self.txn.open_table(TASKS)?.remove(task.id)?;
        self.txn
            .open_table(RUN_TASKS)?
            .remove((task.run, task.id))?;
        let mut attempts = self.txn.open_table(ATTEMPTS)?;
        for number in 1..=task.attempts.max(1) {
            attempts.remove((task.id, number))?;
        }
        Ok(())
    }

    pub fn remove_item(&mut self, path: &str) -> Result<()> {
        self.txn.open_table(ITEMS)?.remove(path)?;
        Ok(())
    }

    /// Forgets a cache entry (its products are gone).
    pub fn uncache(&mut self, key: &str) -> Result<()> {
        self.txn.open_table(CACHE)?.remove(key)?;
        Ok(())
    }
}

/// A record whose status is not the one the lifecycle gives for its event.
fn mismatch<S: Into<&'static str>>(
    entity: &'static str,
    id: u64,
    event: EventKind,
    expected: S,
    written: S,
) -> StoreError {
    StoreError::StatusMismatch {
        entity,
        id,
        event,
        expected: expected.into(),
        written: written.into(),
    }
}
