import { createApp } from 'vue'
import App from './App.vue'
import { router } from './router'
import { setUnauthorizedHandler } from './api/client'
import './style.css'

// A 401 anywhere: the session is gone (expired, revoked, signed out elsewhere): back to login.
setUnauthorizedHandler(() => {
  if (router.currentRoute.value.path !== '/login') {
    void router.push({ path: '/login', query: { expired: '1' } })
  }
})

createApp(App).use(router).mount('#app')
