import { createApp } from 'vue'
import App from './App.vue'
import { router } from './router'
import { setUnauthorizedHandler } from './api/client'
import { notify } from './toast'
import './style.css'

// A 401 anywhere: the session is gone (expired, revoked, signed out elsewhere): back to login.
setUnauthorizedHandler(() => {
  if (router.currentRoute.value.path !== '/login') {
    void router.push({ path: '/login', query: { expired: '1' } })
  }
})

const app = createApp(App)
// An error no screen handled: the user is told. A request cut off because the page is being
// left (a reload, a link to another page) is no error and is dropped; anything else is also
// logged for the developer.
app.config.errorHandler = (error) => {
  if (error instanceof TypeError && /fetch|network/i.test(error.message)) {
    notify('The server cannot be reached: check your connection and try again.', true)
    return
  }
  notify(`Something went wrong: ${error instanceof Error ? error.message : String(error)}`, true)
  console.error(error)
}
app.use(router).mount('#app')
