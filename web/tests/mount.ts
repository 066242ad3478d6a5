// Mounts a component with a router (RouterLink needs one) in memory history.
import { mount } from '@vue/test-utils'
import { createMemoryHistory, createRouter } from 'vue-router'
import type { Component } from 'vue'

export async function mountWithRouter(component: Component, props: Record<string, unknown> = {}) {
  const router = createRouter({ history: createMemoryHistory(), routes: [{ path: '/:rest(.*)*', component: { template: '<div />' } }] })
  await router.push('/')
  await router.isReady()
  return { wrapper: mount(component, { props, global: { plugins: [router] }, attachTo: document.body }), router }
}

/** Resolves once pending promises and Vue's updates have run. */
export async function settle(times = 5) {
  for (let i = 0; i < times; i++) await new Promise((r) => setTimeout(r, 0))
}
