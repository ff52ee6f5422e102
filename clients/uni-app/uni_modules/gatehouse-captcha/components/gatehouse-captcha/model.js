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

// The flow of the components that run one (`start()` and `stop()` are
// theirs): it follows `scene`, stopped and started again when it changes
// (`noScene()` when there is none), and stops when the component goes.
export const sceneFlow = {
	watch: {
		scene: {
			handler(scene) {
				this.stop()
				if (scene) this.start()
				else this.noScene()
			},
			immediate: true
		}
	},
	beforeUnmount() {
		this.stop()
	},
	beforeDestroy() {
		this.stop()
	},
	methods: {
		noScene() {}
	}
}
