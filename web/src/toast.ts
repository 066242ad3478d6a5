// One transient message at a time (saved, rolled back, failed), announced to screen readers.
import { reactive } from 'vue'

export const toast = reactive<{ text: string; error: boolean }>({ text: '', error: false })
let timer: ReturnType<typeof setTimeout> | undefined

export function notify(text: string, error = false) {
  toast.text = text
  toast.error = error
  clearTimeout(timer)
  timer = setTimeout(() => (toast.text = ''), error ? 6000 : 3000)
}
