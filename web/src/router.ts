// Routes of the console. Screens other than the public ones (login, register, password reset)
// need a session; without one the user goes to /login and comes back after signing in.
import { createRouter, createWebHistory, type RouteRecordRaw } from 'vue-router'
import { session } from './session'
import LoginView from './views/LoginView.vue'
import ContactsView from './views/ContactsView.vue'

const routes: RouteRecordRaw[] = [
  { path: '/login', component: LoginView, meta: { public: true } },
  { path: '/register', component: () => import('./views/RegisterView.vue'), meta: { public: true } },
  { path: '/forgot-password', component: () => import('./views/ForgotPasswordView.vue'), meta: { public: true } },
  { path: '/reset-password', component: () => import('./views/ResetPasswordView.vue'), meta: { public: true } },
  { path: '/', redirect: '/contacts' },
  { path: '/contacts', component: ContactsView },
  { path: '/contacts/import', component: () => import('./views/ImportView.vue') },
  { path: '/contacts/:id(\\d+)', component: () => import('./views/ContactView.vue'), props: (r) => ({ id: Number(r.params.id) }) },
  { path: '/companies', component: () => import('./views/CompaniesView.vue') },
  { path: '/companies/:id(\\d+)', component: () => import('./views/CompanyView.vue'), props: (r) => ({ id: Number(r.params.id) }) },
  { path: '/deals', component: () => import('./views/PipelineView.vue') },
  { path: '/deals/forecast', component: () => import('./views/ForecastView.vue') },
  { path: '/tasks', component: () => import('./views/TasksView.vue') },
  { path: '/templates', component: () => import('./views/TemplatesView.vue') },
  { path: '/admin', component: () => import('./views/AdminView.vue') },
  { path: '/automation', component: () => import('./views/AutomationView.vue') },
  { path: '/history', component: () => import('./views/HistoryView.vue') },
  { path: '/sequences', component: () => import('./views/SequencesView.vue') },
  { path: '/trash', component: () => import('./views/TrashView.vue') },
  { path: '/webhooks', component: () => import('./views/WebhooksView.vue') },
  { path: '/:rest(.*)*', component: () => import('./views/NotFoundView.vue') },
]

export const router = createRouter({ history: createWebHistory(), routes })

router.beforeEach((to) => {
  if (!to.meta.public && !session.token) {
    return { path: '/login', query: to.fullPath !== '/' && to.fullPath !== '/contacts' ? { next: to.fullPath } : {} }
  }
  if (to.path === '/login' && session.token) return '/contacts'
})
