// Distributed jobs on BullMQ + Redis (Node only; optional: single-machine users never install it).

// where the queue is
export { CONNECT_TIMEOUT_MS, connectRedis, toolkitVersion } from './connection.js';
// the coordinator: enqueue a job's shards, merge their partials exactly once, return the result
export {
  clearQueue,
  type DistributedOptions,
  type DistributedProgress,
  runDistributed,
} from './coordinator.js';
export { BULL_PREFIX, DEFAULT_QUEUE_NAME, fingerprintOf } from './job-store.js';
// how both load model and data set from a job's spec, and how that is identified
export { datasetIdentity, type JobLoader } from './loader.js';
export { CA_FILE_ENV, PASSWORD_ENV, parseRedisUrl, type RedisTarget, redactUrl } from './redis-url.js';
// what they run
export { QUEUE_STRATEGIES } from './strategies.js';
// the workers: compute shards on any number of machines
export { type QueueWorker, startWorker, type WorkerEvent, type WorkerOptions } from './worker.js';
