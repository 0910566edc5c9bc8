// Vitest global setup of the Redis conformance pass: starts a private redis-server on a free
// loopback port (never 6379, where a shared one may listen), hands its URL to the specs in
// STEPSTATE_TEST_REDIS_URL, and stops it by pid at the end. Used only when
// STEPSTATE_TEST_ADAPTER=redis (see vitest.config.mjs).
import { spawn } from 'node:child_process'
import { createConnection, createServer } from 'node:net'

function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address()
      server.close(() => resolve(port))
    })
  })
}

function answers(port) {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port }, () => socket.write('PING\r\n'))
    socket.once('data', (data) => {
      socket.destroy()
      resolve(data.toString().startsWith('+PONG'))
    })
    socket.once('error', () => resolve(false))
  })
}

/** Starts a redis-server on a free port; resolves with `{ port, url, stop }`. */
export async function startRedis() {
  const port = await freePort()
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
    stdio: 'ignore',
  })
  const exited = new Promise((resolve) => child.once('exit', resolve))
  child.once('error', () => {})
  const deadline = Date.now() + 10_000
  while (!(await answers(port))) {
    if (Date.now() > deadline || child.exitCode !== null) throw new Error(`redis-server did not start on port ${port}`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  return {
    port,
    pid: child.pid,
    url: `redis://127.0.0.1:${port}`,
    async stop() {
      if (child.exitCode === null) child.kill('SIGKILL')
      await exited
    },
  }
}

export default async function setup() {
  const redis = await startRedis()
  process.env.STEPSTATE_TEST_REDIS_URL = redis.url
  return () => redis.stop()
}
