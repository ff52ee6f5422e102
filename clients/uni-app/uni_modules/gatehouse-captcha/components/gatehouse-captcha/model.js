// The v-model of the components (the computed `val`): the page's
// `modelValue` (Vue 3) or `value` (Vue 2) when it binds one, else the
// component's own `inner`; a change goes to `inner` and to both events.

export const val = {
	get() {
		if (this.modelValue !== undefined) return this.modelValue
		if (this.value !== undefined) return this.value
		return this.inner
	},
	set(value) {
		this.inner = value
		this.$emit('update:modelValue', value) // Vue 3 v-model
		this.$emit('input', value) // Vue 2 v-model
	}
}
