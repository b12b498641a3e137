import { debuglog } from 'node:util'

export default debuglog('adonis-lock')
