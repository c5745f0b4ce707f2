"""Span attribute names: OpenTelemetry semantic conventions first, ours under ``otel_tracker.``.

The table in ``docs/attributes.md`` documents every name defined here.
"""

from __future__ import annotations

# CI/CD pipeline conventions (semconv "cicd" namespace): a run is a pipeline
# run, a step is a task run.
CICD_PIPELINE_NAME = "cicd.pipeline.name"
CICD_PIPELINE_RUN_ID = "cicd.pipeline.run.id"
CICD_PIPELINE_ACTION_NAME = "cicd.pipeline.action.name"
CICD_PIPELINE_RESULT = "cicd.pipeline.result"
CICD_PIPELINE_TASK_NAME = "cicd.pipeline.task.name"
CICD_PIPELINE_TASK_RUN_ID = "cicd.pipeline.task.run.id"
CICD_PIPELINE_TASK_RUN_RESULT = "cicd.pipeline.task.run.result"
ERROR_TYPE = "error.type"
PROCESS_EXIT_CODE = "process.exit.code"

# Values of cicd.pipeline.result / cicd.pipeline.task.run.result.
RESULT_SUCCESS = "success"
RESULT_FAILURE = "failure"
RESULT_ERROR = "error"
RESULT_TIMEOUT = "timeout"
RESULT_CANCELLATION = "cancellation"
RESULT_SKIP = "skip"

# Ours.
PREFIX = "otel_tracker."
RUN_SCENARIO = "otel_tracker.run.scenario"
RUN_SIGNAL = "otel_tracker.run.signal"
RUN_KIND = "otel_tracker.run.kind"
RUN_DIR = "otel_tracker.run.dir"
STEP_INDEX = "otel_tracker.step.index"
# a rank of a distributed job (no semantic convention names these yet)
JOB_ID = "otel_tracker.job.id"
JOB_ATTEMPT = "otel_tracker.job.attempt"
JOB_RANK = "otel_tracker.job.rank"
JOB_LOCAL_RANK = "otel_tracker.job.local_rank"
JOB_WORLD_SIZE = "otel_tracker.job.world_size"
# the latest value of each run.log() key, as a gauge for OTLP and Prometheus
METRIC = "otel_tracker.metric"
METRIC_NAME = "otel_tracker.metric.name"
STEP_SKIP_REASON = "otel_tracker.step.skip_reason"
STEP_PROGRESS_COMPLETED = "otel_tracker.step.progress.completed"
STEP_PROGRESS_TOTAL = "otel_tracker.step.progress.total"
# the instrumentation scope of every span a run makes
TRACER_NAME = "otel_tracker"
PARAM_PREFIX = "otel_tracker.param."
PARAMS_OMITTED = "otel_tracker.params.omitted"

# Manifest run status for each result value.
STATUS_FOR_RESULT = {
    RESULT_SUCCESS: "completed",
    RESULT_FAILURE: "failed",
    RESULT_ERROR: "failed",
    RESULT_TIMEOUT: "failed",
    RESULT_CANCELLATION: "cancelled",
    RESULT_SKIP: "skipped",
}
# Steps have no "cancelled": a step interrupted by a signal failed.
STEP_STATUS_FOR_RESULT = {**STATUS_FOR_RESULT, RESULT_CANCELLATION: "failed"}
