'use strict'
// Change events of the stores whose events come from the native side (memory, file, Redis): a
// native subscription calls back whenever events wait, and they are drained as one JSON array
// and delivered as a parsed batch. Shared by native.js and redis.js.

const native = require('../../binding.js')
const { fromNative } = require('../errors.js')

/**
 * Subscribes through `subscribe(ready)` (the binding's `subscribe` or `redisSubscribe`, bound
 * to a store and filter); `deliver(events)` gets each batch. `schedule(drain)`, when given,
 * decides when a batch waiting is drained (the Redis backend holds it until the writes in
 * flight have settled); otherwise it is drained at once. Nothing is drained once unsubscribed.
 */
function subscribeNative(subscribe, deliver, schedule) {
  const subscription = { native: null }
  const drain = () => {
    if (subscription.native !== null) deliver(JSON.parse(native.drainEvents(subscription.native)))
  }
  try {
    subscription.native = subscribe(schedule === undefined ? drain : () => schedule(drain))
  } catch (err) {
    throw fromNative(err)
  }
  return subscription
}

/** Ends a subscription of `subscribeNative`; idempotent. The native callback holds the drain
 *  function, which holds this subscription: let go of the native side here, or neither could
 *  ever be collected. */
function unsubscribeNative(subscription) {
  const subscribed = subscription.native
  subscription.native = null
  if (subscribed !== null) native.unsubscribe(subscribed)
}

module.exports = { subscribeNative, unsubscribeNative }
