/** Entry of a job worker thread: serves batches for {@link runAtlasJob}. */
import { parentPort } from 'node:worker_threads';
import { serveJobWorker } from './jobs.js';

if (parentPort === null) throw new Error('job-worker runs inside a worker thread (see runAtlasJob)');
void serveJobWorker(parentPort);
