//! The batch transform: score a dataset (or request bodies) into the scores
//! dataset, or into SageMaker's `.out` response files.
//!
//! Parquet inputs are read a row group at a time when the scores dataset is
//! the output: only the columns scoring needs are decoded, and a row group
//! that scores whole, on one UTC day, is written as its own column chunks
//! followed by the score columns ([`ipi_storage::CarrySink`]); other row
//! groups, and every input with `accept`, are streamed one batch of
//! [`ScoreConfig::batch_rows`] rows at a time: read, score, hand to the
//! writer. Memory stays bounded whatever the input's size. Request bodies
//! (CSV, JSON, JSON Lines) are read one object at a time, whole, as
//! SageMaker's endpoint reads them.
//!
//! Rows that cannot be scored go to `<output>/_rejects/` with their reason.
//! Both datasets are written with [`WriteMode::ReplacePartitions`], so
//! scoring a day again replaces that day's scores and rejects.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Instant;

use arrow::compute::{cast, filter_record_batch};
use arrow_array::builder::{BinaryBuilder, StringBuilder, UInt64Builder};
use arrow_array::{
    Array, ArrayRef, BooleanArray, FixedSizeListArray, Float32Array, Int64Array, RecordBatch,
    StringArray, UInt32Array,
};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use ipi_core::schema::{self, events};
use ipi_storage::{
    CarrySink, Dataset, DatasetWriter, Location, ParquetSource, ReadOptions, RowGroup, Upload,
    WriteMode, WriterOptions, expand, get_bytes, get_stream, read_parquet,
};
use serde::Serialize;

use crate::codec::{self, Accept, ContentType, RejectReason};
use crate::config::ScoreConfig;
use crate::error::{Error, Result};
use crate::scorer::{Scorer, Scores, predictions};

/// What a batch transform did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ScoreReport {
    /// The model's id.
    pub model_id: String,
    /// Where the scores (or `.out` files) went.
    pub output: String,
    /// Input rows read.
    pub rows_in: u64,
    /// Rows scored.
    pub rows: u64,
    /// Rows sent to `_rejects/`.
    pub rejected: u64,
    /// Scored rows whose entity training never saw.
    pub unseen_entities: u64,
    /// Scored rows flagged (with a threshold).
    pub flagged: u64,
    /// The `anomaly_score` threshold flagged rows are above: the one asked
    /// for, else the one the model was promoted with.
    pub threshold: Option<f64>,
    /// The partitions written (`date=YYYY-MM-DD`, or `""`).
    pub partitions: Vec<String>,
    /// Wall time.
    pub seconds: f64,
    /// `rows / seconds`.
    pub pairs_per_sec: f64,
}

/// Runs the batch transform described by `config`.
pub async fn score(config: &ScoreConfig) -> Result<ScoreReport> {
    if let Some((field, problem)) = config.problems().into_iter().next() {
        return Err(Error::Input {
            url: config.input.clone(),
            reason: format!("{field}: {problem}"),
        });
    }
    let started = Instant::now();
    let scorer = Scorer::load(&config.model, config.device.as_deref()).await?;
    let accept = config.accept.as_deref().map(Accept::parse).transpose()?;
    let content_type = match &config.content_type {
        Some(ct) => Some(ContentType::parse(ct)?),
        None => ContentType::from_extension(config.input.trim_end_matches('/')),
    };
    let output = Location::parse(&config.output)?;
    let mut job = Job::new(config, scorer, accept, output);
    match content_type {
        Some(ct) => job.bodies(ct).await?,
        None => job.parquet().await?,
    }
    job.finish(started).await
}

/// One transform in progress.
struct Job<'a> {
    config: &'a ScoreConfig,
    scorer: Scorer,
    accept: Option<Accept>,
    output: Location,
    /// The scores dataset's writer (not with `accept`): made at the first
    /// batch, when the input's schema is known.
    scores: Option<(SchemaRef, DatasetWriter)>,
    rejects: DatasetWriter,
    /// Partitions touched in either dataset: marked in both at the end, so
    /// that a day's scores and rejects are replaced together.
    partitions: BTreeSet<String>,
    /// Scores partitions written since the current input file began.
    file_partitions: BTreeSet<String>,
    /// The scores files being carried into, by partition
    /// ([`row_group`](Self::row_group)).
    carried: BTreeMap<String, CarrySink>,
    report: ScoreReport,
}

impl<'a> Job<'a> {
    fn new(
        config: &'a ScoreConfig,
        scorer: Scorer,
        accept: Option<Accept>,
        output: Location,
    ) -> Self {
        let rejects = DatasetWriter::new(
            output.join("_rejects"),
            schema::rejects_schema(),
            WriteMode::ReplacePartitions,
        );
        let threshold = config.threshold.or(scorer.promoted_threshold());
        if config.threshold.is_none()
            && let Some(t) = threshold
        {
            tracing::info!(threshold = t, "Flagging at the threshold the model was promoted with.");
        }
        let report = ScoreReport {
            model_id: scorer.model_id().to_string(),
            output: output.to_string(),
            threshold,
            ..ScoreReport::default()
        };
        Job {
            config,
            scorer,
            accept,
            output,
            scores: None,
            rejects,
            partitions: BTreeSet::new(),
            file_partitions: BTreeSet::new(),
            carried: BTreeMap::new(),
            report,
        }
    }

    /// The events dataset, a day of it, or other Parquet.
    async fn parquet(&mut self) -> Result<()> {
        if ipi_storage::is_glob(&self.config.input) {
            return Err(Error::Input {
                url: self.config.input.clone(),
                reason:
                    "a glob can name request bodies (.csv, .json or .jsonl, or given a content \
                         type), not Parquet: give the events dataset, a day of it \
                         (…/date=YYYY-MM-DD) or one .parquet file"
                        .into(),
            });
        }
        let root = Location::parse(&self.config.input)?;
        let day = day_partition(&self.config.input);
        let dataset = match Dataset::open_or_glob(&root).await {
            Ok(dataset) => dataset,
            // A day with no events: nothing to score, but the day's old
            // scores are replaced (by nothing) all the same.
            Err(ipi_storage::Error::NotADataset { .. }) if day.is_some() => {
                tracing::warn!(input = %root, "No events to score for this day.");
                if let Some(day) = day {
                    self.partitions.insert(day);
                }
                if self.accept.is_none() {
                    // Keep the columns the scores already have, if any.
                    let existing = Dataset::open(&self.output).await.ok();
                    match existing.as_ref().and_then(Dataset::schema) {
                        Some(schema) => {
                            let writer = DatasetWriter::new(
                                self.output.clone(),
                                schema.clone(),
                                WriteMode::ReplacePartitions,
                            )
                            .with_options(scores_writer_options());
                            self.scores = Some((schema.clone(), writer));
                        }
                        None => {
                            self.open_scores(&schema::events_schema()).await?;
                        }
                    }
                }
                return Ok(());
            }
            Err(e) => return Err(e.into()),
        };
        // A task reads and decodes ahead (on another thread), while this
        // one scores, and the writer's tasks encode what was scored.
        let (sender, mut batches) = tokio::sync::mpsc::channel(READ_AHEAD_BATCHES);
        // Without `accept`, the input's columns are carried into the scores
        // files where they can be, not decoded and encoded again.
        let carry = self.accept.is_none();
        let reader = tokio::spawn(read_ahead(
            dataset.files().to_vec(),
            self.config.batch_rows,
            carry,
            sender,
        ));
        let files = dataset.files();
        // With `accept`, each file's response, uploaded as it is scored.
        let mut responses: Option<Responses> = None;
        let scored = async {
            let mut first_line = 1u64;
            while let Some(read) = batches.recv().await {
                let (index, rows) = match read {
                    Ok(Read::Rows(index, rows)) => (index, rows),
                    Ok(Read::EndOfFile(index)) => {
                        first_line = 1;
                        let next = files.get(index + 1).map(|f| f.partition.as_str());
                        self.close_carried(next).await?;
                        // The next file is usually another day: let this
                        // one's files finish while the next is scored.
                        for partition in std::mem::take(&mut self.file_partitions) {
                            if Some(partition.as_str()) != next
                                && let Some((_, writer)) = &mut self.scores
                            {
                                writer.close_partition(partition.as_str())?;
                            }
                        }
                        if let Some(accept) = self.accept {
                            // A file without rows still gets its (empty) response.
                            let done = responses
                                .take()
                                .unwrap_or_else(|| self.responses(accept, &files[index].path));
                            done.finish().await?;
                        }
                        continue;
                    }
                    Err(error) => return Err(error),
                };
                let file = &files[index];
                if let Some(accept) = self.accept
                    && responses.is_none()
                {
                    responses = Some(self.responses(accept, &file.path));
                }
                let source = file.location.to_string();
                // A hive partition in the path (`date=…/part.parquet`) names
                // the rejects' partition when rows carry no timestamp.
                let fallback = if file.partition.starts_with("date=") {
                    file.partition.clone()
                } else {
                    day.clone().unwrap_or_else(|| source_partition(&source))
                };
                first_line += match rows {
                    Rows::Batch(batch) => {
                        self.table_batch(&source, first_line, &batch, &fallback, &mut responses)
                            .await?;
                        batch.num_rows() as u64
                    }
                    Rows::RowGroup(group, projected) => {
                        self.row_group(&source, first_line, &group, &projected, &fallback).await?;
                        group.num_rows() as u64
                    }
                };
            }
            Ok(())
        }
        .await;
        if let Err(error) = scored {
            if let Some(responses) = responses {
                responses.abort().await;
            }
            return Err(error);
        }
        reader.await.map_err(|e| Error::Task(e.to_string()))?;
        Ok(())
    }

    /// The response object for the input object `name`.
    fn responses(&self, accept: Accept, name: &str) -> Responses {
        Responses::new(accept, &self.output.join(&format!("{name}.out")))
    }

    /// Scores one batch of a table input.
    async fn table_batch(
        &mut self,
        source: &str,
        first_line: u64,
        batch: &RecordBatch,
        fallback_partition: &str,
        responses: &mut Option<Responses>,
    ) -> Result<()> {
        let n = batch.num_rows();
        self.report.rows_in += n as u64;
        let input = Input::of(source, batch)?;
        let Checked { keep, rows, ips, rejects } =
            self.check(&input, source, first_line, fallback_partition);
        self.write_rejects(rejects).await?;
        if ips.is_empty() {
            return Ok(());
        }
        let good = if ips.len() == n {
            batch.clone()
        } else {
            filter_record_batch(batch, &BooleanArray::from(keep))?
        };
        let verbose = self.config.verbose;
        let scores = self.scorer.score_blocking(rows, ips, verbose).await?;
        self.count(&scores);
        if let Some(responses) = responses {
            return responses.put(&predictions(&scores, self.scorer.dim())).await;
        }
        let micros = match good.column_by_name(events::TIMESTAMP) {
            Some(ts) => Some(timestamp_micros(ts)?),
            None => None,
        };
        let scored = self.scored_batch(&good, &scores).await?;
        match micros {
            None => {
                self.write_scores(fallback_partition_for_scores(fallback_partition), &scored).await
            }
            Some(micros) => {
                // Rows of one day are usually one batch; split when not.
                let days: Vec<i64> =
                    (0..micros.len()).map(|i| micros.value(i).div_euclid(MICROS_PER_DAY)).collect();
                let distinct: BTreeSet<i64> = days.iter().copied().collect();
                for day in distinct {
                    let partition = date_partition(day * MICROS_PER_DAY);
                    if days.iter().all(|&d| d == day) {
                        self.write_scores(&partition, &scored).await?;
                    } else {
                        let mask: BooleanArray = days.iter().map(|&d| Some(d == day)).collect();
                        let part = filter_record_batch(&scored, &mask)?;
                        self.write_scores(&partition, &part).await?;
                    }
                }
                Ok(())
            }
        }
    }

    /// Which rows of `input` can be scored (their entity rows and
    /// addresses), and the others as rejects with their reasons.
    fn check(
        &self,
        input: &Input,
        source: &str,
        first_line: u64,
        fallback_partition: &str,
    ) -> Checked {
        let n = input.entity.len();
        let mut checked = Checked {
            keep: Vec::with_capacity(n),
            rows: Vec::with_capacity(n),
            ips: Vec::with_capacity(n),
            rejects: Rejects::default(),
        };
        for i in 0..n {
            let entity = input.entity.is_valid(i).then(|| input.entity.value(i));
            let ip = input.ipv4(i);
            let valid = match ip {
                Some(ip) if entity.is_some_and(|e| !e.trim().is_empty()) => Ok(ip),
                _ => codec::validate(entity, input.ip_text(i).as_bytes())
                    .and(Err(RejectReason::InvalidIp)),
            };
            let valid = valid.and_then(|ip| match &input.micros {
                Some(ts) if ts.is_null(i) => Err(RejectReason::Malformed),
                _ => Ok(ip),
            });
            match valid {
                Ok(ip) => {
                    checked.keep.push(true);
                    checked.rows.push(self.scorer.entity_row(entity.unwrap_or_default()));
                    checked.ips.push(ip);
                }
                Err(reason) => {
                    checked.keep.push(false);
                    let partition = match &input.micros {
                        Some(ts) if ts.is_valid(i) => date_partition(ts.value(i)),
                        _ => fallback_partition.to_string(),
                    };
                    let raw = format!("{},{}", entity.unwrap_or_default(), input.ip_text(i));
                    checked.rejects.push(
                        partition,
                        source,
                        first_line + i as u64,
                        reason.as_str(),
                        raw.as_bytes(),
                    );
                }
            }
        }
        checked
    }

    /// Scores one row group of an events file, carrying its columns into
    /// the scores file unchanged (see [`ipi_storage::CarrySink`]) when it
    /// can: every row scores, all are of one day, and the file's columns
    /// are the scores dataset's first ones. Otherwise its batches go the
    /// ordinary way ([`table_batch`](Self::table_batch)).
    async fn row_group(
        &mut self,
        source: &str,
        first_line: u64,
        group: &RowGroup,
        projected: &RecordBatch,
        fallback_partition: &str,
    ) -> Result<()> {
        let n = group.num_rows();
        let scores_schema = self.open_scores(group.schema()).await?;
        let carried = group.schema().fields().len();
        let input = Input::of(source, projected)?;
        let checked = self.check(&input, source, first_line, fallback_partition);
        let day = match &input.micros {
            Some(micros) if n > 0 && micros.null_count() == 0 => {
                let day = micros.value(0).div_euclid(MICROS_PER_DAY);
                micros.values().iter().all(|m| m.div_euclid(MICROS_PER_DAY) == day).then_some(day)
            }
            _ => None,
        };
        let same_columns =
            scores_schema.fields().get(..carried) == Some(&group.schema().fields()[..]);
        let sink = match day {
            Some(day) if same_columns && checked.rows.len() == n => {
                let partition = date_partition(day * MICROS_PER_DAY);
                self.carry_sink(&partition, carried, group)?.map(|sink| (partition, sink))
            }
            _ => None,
        };
        let Some((partition, mut sink)) = sink else {
            // The ordinary way, batch by batch, from the bytes in memory.
            let mut line = first_line;
            for batch in group.read(None, self.config.batch_rows)? {
                let batch = batch?;
                let rows = batch.num_rows() as u64;
                self.table_batch(source, line, &batch, fallback_partition, &mut None).await?;
                line += rows;
            }
            return Ok(());
        };
        self.report.rows_in += n as u64;
        let scores =
            self.scorer.score_blocking(checked.rows, checked.ips, self.config.verbose).await?;
        self.count(&scores);
        let extra_schema = Arc::new(Schema::new(scores_schema.fields()[carried..].to_vec()));
        let extra = RecordBatch::try_new(extra_schema, self.score_columns(&scores, n)?)?;
        let appended = sink.append(group, &extra).await;
        self.carried.insert(partition.clone(), sink);
        appended?;
        self.partitions.insert(partition.clone());
        self.file_partitions.insert(partition);
        Ok(())
    }

    /// The carried scores file of `partition` (started at its first row
    /// group), when `group`'s columns can be carried into it.
    fn carry_sink(
        &mut self,
        partition: &str,
        carried: usize,
        group: &RowGroup,
    ) -> Result<Option<CarrySink>> {
        let sink = match self.carried.remove(partition) {
            Some(sink) => sink,
            None => {
                let (_, writer) =
                    self.scores.as_mut().ok_or_else(|| Error::Task("no writer".into()))?;
                writer.carry(partition, carried)?
            }
        };
        if sink.accepts(group) {
            return Ok(Some(sink));
        }
        // Columns of the same Arrow types but other Parquet ones (another
        // writer's choices), or no page index where the file's first row
        // group had one: decoded and written instead.
        self.carried.insert(partition.to_string(), sink);
        Ok(None)
    }

    /// Closes the carried scores files of the partitions not in `keep`.
    async fn close_carried(&mut self, keep: Option<&str>) -> Result<()> {
        let done: Vec<String> =
            self.carried.keys().filter(|p| Some(p.as_str()) != keep).cloned().collect();
        for partition in done {
            let Some(sink) = self.carried.remove(&partition) else { continue };
            let (_, writer) =
                self.scores.as_mut().ok_or_else(|| Error::Task("no writer".into()))?;
            writer.add_carried(sink).await?;
        }
        Ok(())
    }

    /// Request bodies: every object the input names. CSV and JSON Lines
    /// are streamed, [`ScoreConfig::batch_rows`] lines at a time, however
    /// large the object (SageMaker's Batch Transform fails on large ones);
    /// a JSON body is one document, read whole.
    async fn bodies(&mut self, content_type: ContentType) -> Result<()> {
        let objects = expand(&self.config.input).await?;
        if objects.is_empty() {
            return Err(Error::Input {
                url: self.config.input.clone(),
                reason: "no such object, or nothing under this prefix".into(),
            });
        }
        let input_schema = Arc::new(Schema::new(vec![
            Field::new(events::ENTITY, DataType::Utf8, false),
            Field::new(events::IP, DataType::Utf8, false),
        ]));
        for (location, _) in objects {
            let source = location.to_string();
            let partition = source_partition(&source);
            // Even a now-clean file replaces its old rejects.
            self.partitions.insert(partition.clone());
            let mut responses = self
                .accept
                .map(|accept| self.responses(accept, location.filename().unwrap_or("input")));
            let scored = async {
                let bad_body =
                    |e: Error| Error::Input { url: source.clone(), reason: e.to_string() };
                if content_type == ContentType::Json {
                    let body = get_bytes(&location).await?;
                    let decoded = codec::decode(content_type, &body).map_err(bad_body)?;
                    return self
                        .body_part(&source, &partition, &input_schema, decoded, &mut responses)
                        .await;
                }
                let mut pieces =
                    LinePieces::new(get_stream(&location).await?, self.config.batch_rows);
                while let Some((first_line, piece)) = pieces.next().await? {
                    let mut decoded = codec::decode(content_type, &piece).map_err(bad_body)?;
                    decoded.shift_lines(first_line - 1);
                    self.body_part(&source, &partition, &input_schema, decoded, &mut responses)
                        .await?;
                }
                Ok(())
            }
            .await;
            match (scored, responses) {
                (Ok(()), Some(responses)) => responses.finish().await?,
                (Ok(()), None) => {
                    if self.scores.is_none() {
                        self.open_scores(&input_schema).await?;
                    }
                }
                (Err(error), Some(responses)) => {
                    responses.abort().await;
                    return Err(error);
                }
                (Err(error), None) => return Err(error),
            }
        }
        Ok(())
    }

    /// Scores a decoded piece of a request body: its bad records and
    /// unscorable pairs to the rejects, its scores to the scores dataset or
    /// the response.
    async fn body_part(
        &mut self,
        source: &str,
        partition: &str,
        input_schema: &SchemaRef,
        decoded: codec::Decoded,
        responses: &mut Option<Responses>,
    ) -> Result<()> {
        self.report.rows_in += (decoded.pairs.len() + decoded.bad.len()) as u64;
        let mut rejects = Rejects::default();
        for bad in &decoded.bad {
            let reason = format!("{}: {}", RejectReason::Malformed.as_str(), bad.message);
            rejects.push(partition.to_string(), source, bad.line, &reason, &bad.raw);
        }
        let mut good = Vec::with_capacity(decoded.pairs.len());
        for pair in decoded.pairs {
            match pair.validate() {
                Ok(ip) => good.push((pair, ip)),
                Err(reason) => {
                    let raw = format!("{},{}", pair.entity, pair.ip);
                    rejects.push(
                        partition.to_string(),
                        source,
                        pair.line,
                        reason.as_str(),
                        raw.as_bytes(),
                    );
                }
            }
        }
        self.write_rejects(rejects).await?;
        for chunk in good.chunks(self.config.batch_rows) {
            let entities: Vec<&str> = chunk.iter().map(|(p, _)| p.entity.as_str()).collect();
            let rows = entities.iter().map(|e| self.scorer.entity_row(e)).collect();
            let ips: Vec<u32> = chunk.iter().map(|&(_, ip)| ip).collect();
            let scores = self.scorer.score_blocking(rows, ips, self.config.verbose).await?;
            self.count(&scores);
            if let Some(responses) = responses {
                responses.put(&predictions(&scores, self.scorer.dim())).await?;
                continue;
            }
            let batch = RecordBatch::try_new(
                input_schema.clone(),
                vec![
                    Arc::new(StringArray::from(entities)),
                    Arc::new(StringArray::from_iter_values(
                        chunk.iter().map(|(p, _)| p.ip.as_str()),
                    )),
                ],
            )?;
            let scored = self.scored_batch(&batch, &scores).await?;
            self.write_scores("", &scored).await?;
        }
        Ok(())
    }

    fn count(&mut self, scores: &Scores) {
        self.report.rows += scores.dot_product.len() as u64;
        self.report.unseen_entities += scores.entity_seen.iter().filter(|s| !**s).count() as u64;
        if let Some(t) = self.report.threshold {
            self.report.flagged +=
                scores.dot_product.iter().filter(|&&d| f64::from(-d) > t).count() as u64;
        }
    }

    /// The scores dataset's writer, made for `input`'s columns.
    async fn open_scores(&mut self, input: &Schema) -> Result<SchemaRef> {
        if let Some((schema, _)) = &self.scores {
            return Ok(schema.clone());
        }
        let input = Schema::new(input.fields().clone());
        let dim = self.config.verbose.then(|| self.scorer.dim() as i32);
        let schema = schema::scores_schema(&input, dim);
        let writer =
            DatasetWriter::new(self.output.clone(), schema.clone(), WriteMode::ReplacePartitions)
                .with_options(scores_writer_options());
        self.scores = Some((schema.clone(), writer));
        Ok(schema)
    }

    /// `batch`'s columns plus the score columns.
    async fn scored_batch(&mut self, batch: &RecordBatch, scores: &Scores) -> Result<RecordBatch> {
        let schema = self.open_scores(batch.schema().as_ref()).await?;
        let mut columns: Vec<ArrayRef> = batch.columns().to_vec();
        columns.extend(self.score_columns(scores, batch.num_rows())?);
        if columns.len() != schema.fields().len() {
            return Err(Error::Input {
                url: self.config.input.clone(),
                reason: "the input's files do not all have the same columns".into(),
            });
        }
        Ok(RecordBatch::try_new(schema, columns)?)
    }

    /// The columns the scores dataset adds to the input's, for `n` rows.
    fn score_columns(&self, scores: &Scores, n: usize) -> Result<Vec<ArrayRef>> {
        let dot = Float32Array::from(scores.dot_product.clone());
        let anomaly: Float32Array = scores.dot_product.iter().map(|d| Some(-d)).collect();
        let seen = BooleanArray::from(scores.entity_seen.clone());
        let flagged: BooleanArray = match self.report.threshold {
            Some(t) => scores.dot_product.iter().map(|&d| Some(f64::from(-d) > t)).collect(),
            None => BooleanArray::new_null(n),
        };
        let model_id =
            StringArray::from_iter_values(std::iter::repeat_n(self.scorer.model_id(), n));
        let mut columns: Vec<ArrayRef> = vec![
            Arc::new(dot),
            Arc::new(anomaly),
            Arc::new(seen),
            Arc::new(flagged),
            Arc::new(model_id),
        ];
        if self.config.verbose {
            let dim = self.scorer.dim() as i32;
            let item = Arc::new(Field::new("item", DataType::Float32, false));
            for v in [&scores.entity_embedding, &scores.ip_embedding] {
                let values = Float32Array::from(v.clone().unwrap_or_default());
                columns.push(Arc::new(FixedSizeListArray::try_new(
                    item.clone(),
                    dim,
                    Arc::new(values),
                    None,
                )?));
            }
        }
        Ok(columns)
    }

    async fn write_scores(&mut self, partition: &str, batch: &RecordBatch) -> Result<()> {
        self.partitions.insert(partition.to_string());
        self.file_partitions.insert(partition.to_string());
        let (_, writer) = self.scores.as_mut().ok_or_else(|| Error::Task("no writer".into()))?;
        writer.write(partition, batch).await?;
        Ok(())
    }

    async fn write_rejects(&mut self, rejects: Rejects) -> Result<()> {
        for (partition, batch) in rejects.finish()? {
            self.report.rejected += batch.num_rows() as u64;
            self.partitions.insert(partition.clone());
            self.rejects.write(partition.as_str(), &batch).await?;
        }
        Ok(())
    }

    async fn finish(mut self, started: Instant) -> Result<ScoreReport> {
        self.close_carried(None).await?;
        for partition in &self.partitions {
            if partition.starts_with("date=") || partition.starts_with("source_id=") {
                self.rejects.mark_written(partition.as_str())?;
            }
            if let Some((_, writer)) = &mut self.scores
                && partition.starts_with("date=")
            {
                writer.mark_written(partition.as_str())?;
            }
        }
        if self.report.rejected > 0 || rejects_exist(&self.output).await {
            self.rejects.commit().await?;
        }
        if let Some((_, writer)) = self.scores.take() {
            let summary = writer.commit().await?;
            self.report.partitions = summary.partitions_written;
        } else {
            self.report.partitions =
                self.partitions.iter().filter(|p| !p.starts_with("source_id=")).cloned().collect();
        }
        let seconds = started.elapsed().as_secs_f64();
        self.report.seconds = seconds;
        self.report.pairs_per_sec =
            if seconds > 0.0 { self.report.rows as f64 / seconds } else { 0.0 };
        Ok(self.report)
    }
}

/// SageMaker's response body for one input object, uploaded as it is
/// scored and published whole (or not at all).
struct Responses {
    encoder: codec::Encoder,
    upload: Upload,
}

impl Responses {
    fn new(accept: Accept, location: &Location) -> Responses {
        Responses { encoder: codec::Encoder::new(accept), upload: Upload::new(location) }
    }

    async fn put(&mut self, predictions: &[codec::Prediction]) -> Result<()> {
        let mut bytes = Vec::with_capacity(predictions.len() * 24);
        self.encoder.items(predictions, &mut bytes);
        Ok(self.upload.put(bytes.into()).await?)
    }

    async fn finish(mut self) -> Result<()> {
        let mut bytes = Vec::new();
        self.encoder.finish(&mut bytes);
        self.upload.put(bytes.into()).await?;
        Ok(self.upload.finish().await?)
    }

    async fn abort(self) {
        self.upload.abort().await;
    }
}

/// An object's bytes in pieces of whole lines, `lines` lines at most each
/// (the last piece may lack its final newline), with the number of each
/// piece's first line. Only one piece and one chunk of the object are held
/// at a time.
struct LinePieces {
    chunks: BoxStream<'static, ipi_storage::Result<Bytes>>,
    buffer: Vec<u8>,
    /// Newlines in `buffer`.
    newlines: usize,
    lines: usize,
    next_line: u64,
    done: bool,
}

impl LinePieces {
    fn new(chunks: BoxStream<'static, ipi_storage::Result<Bytes>>, lines: usize) -> LinePieces {
        LinePieces {
            chunks,
            buffer: Vec::new(),
            newlines: 0,
            lines: lines.max(1),
            next_line: 1,
            done: false,
        }
    }

    async fn next(&mut self) -> Result<Option<(u64, Vec<u8>)>> {
        loop {
            if self.newlines >= self.lines || (self.done && !self.buffer.is_empty()) {
                let (cut, newlines) =
                    match memchr::memchr_iter(b'\n', &self.buffer).nth(self.lines - 1) {
                        Some(at) => (at + 1, self.lines),
                        None => (self.buffer.len(), self.newlines),
                    };
                let rest = self.buffer.split_off(cut);
                let piece = std::mem::replace(&mut self.buffer, rest);
                let first = self.next_line;
                self.next_line += newlines as u64;
                self.newlines -= newlines;
                return Ok(Some((first, piece)));
            }
            if self.done {
                return Ok(None);
            }
            match self.chunks.next().await {
                Some(chunk) => {
                    let chunk = chunk?;
                    self.newlines += memchr::memchr_iter(b'\n', &chunk).count();
                    self.buffer.extend_from_slice(&chunk);
                }
                None => self.done = true,
            }
        }
    }
}

/// Batches decoded ahead of the one being scored.
const READ_AHEAD_BATCHES: usize = 2;

/// What the reader task hands over, file by file in order.
enum Read {
    /// Rows of the file with this index.
    Rows(usize, Rows),
    /// The file with this index has no more rows.
    EndOfFile(usize),
}

/// Rows of a table input: a batch, or a row group that may be carried.
enum Rows {
    Batch(RecordBatch),
    /// A row group, and the columns scoring reads decoded from it
    /// ([`scoring_columns_of`]).
    RowGroup(Box<RowGroup>, RecordBatch),
}

/// The columns scoring reads from an events row group: `ip` only when
/// there is no `ipv4` (a row without `ipv4` is a reject, and its row group
/// is then read whole anyway).
fn scoring_columns_of(schema: &Schema) -> Vec<&'static str> {
    let ip =
        if schema.column_with_name(events::IPV4).is_some() { events::IPV4 } else { events::IP };
    vec![events::TIMESTAMP, events::ENTITY, ip]
}

/// Row groups larger than this (compressed) are streamed batch by batch
/// rather than held whole to be carried: memory stays bounded whatever
/// wrote the input (ingest's are about 20 MB a million rows).
const MAX_CARRIED_ROW_GROUP: u64 = 64 << 20;

/// Reads `files` in order into `sender`, stopping at the first error (which
/// it sends) or when the receiver is gone. With `carry`, the files whose
/// row groups all fit in [`MAX_CARRIED_ROW_GROUP`] are read a row group at a
/// time ([`Rows::RowGroup`]); the others a batch at a time.
async fn read_ahead(
    files: Vec<ipi_storage::DataFile>,
    batch_rows: usize,
    carry: bool,
    sender: tokio::sync::mpsc::Sender<Result<Read>>,
) {
    for (index, file) in files.iter().enumerate() {
        let read = async {
            if carry {
                let source = ParquetSource::open(&file.location, Some(file.size)).await?;
                let fits = (0..source.num_row_groups())
                    .all(|i| source.row_group_bytes(i) <= MAX_CARRIED_ROW_GROUP);
                if fits && source.schema().column_with_name(events::ENTITY).is_some() {
                    let columns = scoring_columns_of(source.schema());
                    for i in 0..source.num_row_groups() {
                        let group = source.row_group(i).await?;
                        if group.num_rows() == 0 {
                            continue; // nothing to score (pyarrow writes one for an empty table)
                        }
                        let columns = columns.clone();
                        let (group, projected) = tokio::task::spawn_blocking(move || {
                            let projected = read_whole(&group, &columns);
                            (group, projected)
                        })
                        .await
                        .map_err(|e| Error::Task(e.to_string()))?;
                        let read = Read::Rows(index, Rows::RowGroup(Box::new(group), projected?));
                        if sender.send(Ok(read)).await.is_err() {
                            return Ok(false);
                        }
                    }
                    return Ok(sender.send(Ok(Read::EndOfFile(index))).await.is_ok());
                }
            }
            let options =
                ReadOptions::default().with_batch_size(batch_rows).with_file_size(file.size);
            let mut stream = read_parquet(&file.location, &options).await?;
            while let Some(batch) = stream.try_next().await? {
                if sender.send(Ok(Read::Rows(index, Rows::Batch(batch)))).await.is_err() {
                    return Ok(false);
                }
            }
            Ok::<_, Error>(sender.send(Ok(Read::EndOfFile(index))).await.is_ok())
        };
        match read.await {
            Ok(true) => {}
            Ok(false) => return,
            Err(error) => {
                let _ = sender.send(Err(error)).await;
                return;
            }
        }
    }
}

/// `columns` of a whole row group, as one batch.
fn read_whole(group: &RowGroup, columns: &[&str]) -> Result<RecordBatch> {
    let batches = group
        .read(Some(columns), group.num_rows().max(1))?
        .collect::<ipi_storage::Result<Vec<_>>>()?;
    match batches.as_slice() {
        [one] => Ok(one.clone()),
        _ => {
            let schema =
                batches.first().map(|b| b.schema()).unwrap_or_else(|| Arc::new(Schema::empty()));
            Ok(arrow::compute::concat_batches(&schema, &batches)?)
        }
    }
}

/// How scores are encoded: as ingest encodes the events columns they carry
/// (zstd level 1, no dictionary for nearly unique columns, delta for time,
/// offset, status and line numbers), and no dictionary for the scores,
/// which are all different either.
fn scores_writer_options() -> WriterOptions {
    use ipi_core::schema::scores;
    let mut options = WriterOptions::default();
    options.parquet.zstd_level = 1;
    options.parquet.plain_columns =
        events::PLAIN.iter().chain(&scores::PLAIN).map(|c| c.to_string()).collect();
    options.parquet.delta_columns = events::DELTA.map(String::from).to_vec();
    options.parquet.delta_length_columns = events::DELTA_LENGTH.map(String::from).to_vec();
    options.parquet.uncompressed_columns = events::UNCOMPRESSED.map(String::from).to_vec();
    options.parquet.no_statistics_columns = events::NO_STATISTICS.map(String::from).to_vec();
    options
}

/// Whether `<output>/_rejects/` already holds a dataset (whose stale
/// partitions this run must replace).
async fn rejects_exist(output: &Location) -> bool {
    Dataset::open(&output.join("_rejects")).await.is_ok()
}

const MICROS_PER_DAY: i64 = 86_400_000_000;

/// `date=YYYY-MM-DD` of a UTC instant in microseconds.
fn date_partition(micros: i64) -> String {
    let date = chrono::DateTime::from_timestamp_micros(micros)
        .map(|t| t.date_naive().format("%Y-%m-%d").to_string())
        .unwrap_or_else(|| "invalid".to_string());
    format!("{}={date}", schema::PARTITION_COLUMN)
}

/// The rejects partition of rows without a day: `source_id=<xxh3 hex>`.
fn source_partition(source: &str) -> String {
    format!("source_id={:016x}", ipi_core::hash::entity_hash(source))
}

/// Where untimed scores go: the root of the dataset.
fn fallback_partition_for_scores(fallback: &str) -> &str {
    if fallback.starts_with("date=") { fallback } else { "" }
}

/// `date=YYYY-MM-DD` when the input's last path segment is one (a day of a
/// partitioned dataset).
pub fn day_partition(input: &str) -> Option<String> {
    let last = input.trim_end_matches('/').rsplit('/').next()?;
    let date = last.strip_prefix("date=")?;
    chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d").ok()?;
    Some(last.to_string())
}

/// The columns of a table batch that scoring reads.
struct Input {
    entity: StringArray,
    ipv4: Option<UInt32Array>,
    ip: Option<StringArray>,
    micros: Option<Int64Array>,
}

impl Input {
    fn of(source: &str, batch: &RecordBatch) -> Result<Input> {
        let missing =
            |reason: &str| Error::Input { url: source.to_string(), reason: reason.into() };
        let text = |name: &str| -> Result<Option<StringArray>> {
            let Some(column) = batch.column_by_name(name) else { return Ok(None) };
            let utf8 = cast(column, &DataType::Utf8)?;
            Ok(utf8.as_any().downcast_ref::<StringArray>().cloned())
        };
        let entity = text(events::ENTITY)?.ok_or_else(|| missing("no `entity` column"))?;
        let ipv4 = match batch.column_by_name(events::IPV4) {
            Some(c) => cast(c, &DataType::UInt32)?.as_any().downcast_ref::<UInt32Array>().cloned(),
            None => None,
        };
        let ip = text(events::IP)?;
        if ipv4.is_none() && ip.is_none() {
            return Err(missing("no `ipv4` or `ip` column"));
        }
        let micros = match batch.column_by_name(events::TIMESTAMP) {
            Some(ts) => Some(timestamp_micros(ts)?),
            None => None,
        };
        Ok(Input { entity, ipv4, ip, micros })
    }

    /// The row's IPv4 address: the `ipv4` column, else `ip` parsed.
    fn ipv4(&self, i: usize) -> Option<u32> {
        match (&self.ipv4, &self.ip) {
            (Some(v), _) => v.is_valid(i).then(|| v.value(i)),
            (None, Some(ip)) => ip
                .is_valid(i)
                .then(|| ipi_core::ipv4::parse(ip.value(i).trim().as_bytes()))
                .flatten(),
            (None, None) => None,
        }
    }

    /// The address as written (for rejects).
    fn ip_text(&self, i: usize) -> String {
        match (&self.ip, &self.ipv4) {
            (Some(ip), _) if ip.is_valid(i) => ip.value(i).to_string(),
            (_, Some(v)) if v.is_valid(i) => ipi_core::ipv4::format(v.value(i)),
            _ => String::new(),
        }
    }
}

/// A timestamp column as UTC microseconds.
fn timestamp_micros(column: &ArrayRef) -> Result<Int64Array> {
    let column = match column.data_type() {
        DataType::Timestamp(TimeUnit::Microsecond, _) => column.clone(),
        DataType::Timestamp(_, zone) => {
            cast(column, &DataType::Timestamp(TimeUnit::Microsecond, zone.clone()))?
        }
        other => {
            return Err(Error::Arrow(arrow_schema::ArrowError::CastError(format!(
                "`timestamp` is {other}, not a timestamp"
            ))));
        }
    };
    let ints = cast(&column, &DataType::Int64)?;
    Ok(ints
        .as_any()
        .downcast_ref::<Int64Array>()
        .cloned()
        .unwrap_or_else(|| Int64Array::new_null(0)))
}

/// The rows of a batch that can be scored ([`Job::check`]).
struct Checked {
    /// Whether each row scores.
    keep: Vec<bool>,
    /// The entity rows of those that do.
    rows: Vec<u32>,
    /// Their addresses.
    ips: Vec<u32>,
    /// The others.
    rejects: Rejects,
}

/// Rejected rows, grouped by partition.
#[derive(Default)]
struct Rejects {
    parts: BTreeMap<String, (StringBuilder, UInt64Builder, StringBuilder, BinaryBuilder)>,
}

impl Rejects {
    fn push(&mut self, partition: String, source: &str, line: u64, reason: &str, raw: &[u8]) {
        let (s, l, r, b) = self.parts.entry(partition).or_default();
        s.append_value(source);
        l.append_value(line);
        r.append_value(reason);
        b.append_value(raw);
    }

    fn finish(self) -> Result<Vec<(String, RecordBatch)>> {
        let schema = schema::rejects_schema();
        self.parts
            .into_iter()
            .map(|(partition, (mut s, mut l, mut r, mut b))| {
                let columns: Vec<ArrayRef> = vec![
                    Arc::new(s.finish()),
                    Arc::new(l.finish()),
                    Arc::new(r.finish()),
                    Arc::new(b.finish()),
                ];
                Ok((partition, RecordBatch::try_new(schema.clone(), columns)?))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_are_recognised_in_input_urls() {
        assert_eq!(
            day_partition("s3://b/events/date=2018-11-13/").as_deref(),
            Some("date=2018-11-13")
        );
        assert_eq!(day_partition("var/events/date=2018-11-13").as_deref(), Some("date=2018-11-13"));
        assert_eq!(day_partition("var/events"), None);
        assert_eq!(day_partition("var/events/date=yesterday"), None);
    }

    #[test]
    fn partitions_are_utc_dates() {
        assert_eq!(date_partition(0), "date=1970-01-01");
        assert_eq!(date_partition(MICROS_PER_DAY - 1), "date=1970-01-01");
        assert_eq!(date_partition(-1), "date=1969-12-31");
    }
}
