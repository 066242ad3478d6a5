// Amounts by currency, never added across currencies (the API has no conversion).
export function money(amount: number | null | undefined, currency: string): string {
  if (amount === null || amount === undefined) return ''
  try {
    return new Intl.NumberFormat(undefined, { style: 'currency', currency }).format(amount)
  } catch {
    return `${amount} ${currency}`
  }
}

/** `{"USD": 100, "EUR": 5}` -> "$100.00 · €5.00" (sorted by code, as the API sends them). */
export function byCurrency(map: Record<string, number> | null | undefined): string {
  const entries = Object.entries(map ?? {})
  return entries.length ? entries.map(([c, v]) => money(v, c)).join(' · ') : '—'
}
